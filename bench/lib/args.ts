// Command-line flags shared by the virtual-time benchmarks: --quick, --write, --help, numeric flags with
// their kind, and string flags. Returns the values, or the exit code after printing usage.
export interface BenchArgs {
  quick: boolean;
  /** undefined: not given (the benchmark writes unless --quick). */
  write: boolean | undefined;
  numbers: Record<string, number>;
  strings: Record<string, string>;
}

export function parseBenchArgs(argv: readonly string[], usage: string, numeric: Readonly<Record<string, 'integer' | 'number'>>, stringFlags: readonly string[] = []): BenchArgs | { exit: number } {
  const out: BenchArgs = { quick: false, write: undefined, numbers: {}, strings: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.replace(/^--/, '');
    if (a === '--quick') out.quick = true;
    else if (a === '--write') out.write = true;
    else if (a.startsWith('--') && numeric[name]) {
      const v = Number(argv[++i]);
      if (!(v > 0) || !Number.isFinite(v) || (numeric[name] === 'integer' && !Number.isInteger(v))) {
        process.stderr.write(`${a}: expected a positive ${numeric[name]}, got "${argv[i]}"\n${usage}`);
        return { exit: 2 };
      }
      out.numbers[name] = v;
    } else if (a.startsWith('--') && stringFlags.includes(name)) {
      const v = argv[++i];
      if (v === undefined || v === '') {
        process.stderr.write(`${a}: expected a value\n${usage}`);
        return { exit: 2 };
      }
      out.strings[name] = v;
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(usage);
      return { exit: 0 };
    } else {
      process.stderr.write(`unknown argument "${a}"\n${usage}`);
      return { exit: 2 };
    }
  }
  return out;
}
