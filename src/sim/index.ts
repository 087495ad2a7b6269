// The simulator module: the shared scenario catalogue, the virtual-time runner and the `sim` command.
export * from './scenarios.js';
export * from './simulator.js';
export * from './rng.js';
export { runSimCli, SIM_USAGE, markdownTable, textTable, summary } from './cli.js';
