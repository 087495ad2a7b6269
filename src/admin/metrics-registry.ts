// meshmedic's own Prometheus metrics registry: counters, gauges and histograms with labels, metrics computed
// at scrape time, and the text exposition format 0.0.4. Exactly what the sidecar uses, in one small module:
// loading a general client library cost ~8 MB of resident memory in an otherwise dependency-free sidecar.
import type { NativeBuckets } from './native-histogram.js';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
export type LabelValues = Readonly<Record<string, string | number>>;
/** Values for some of a metric's labels `T` (its label names, as the metric's type parameter says). */
export type LabelsOf<T extends string> = Readonly<Partial<Record<T, string | number>>>;
/** Label values as the metrics take them (an absent or undefined value: the label is not set). */
type AnyLabels = Readonly<Record<string, string | number | undefined>>;

/** One sample of a family: `metricName` overrides the family name (a histogram's `_bucket`, `_sum`, `_count`). */
export interface MetricValue {
  readonly labels: LabelValues;
  value: number;
  readonly metricName?: string;
  /** On a histogram's `_count`: its native buckets, read only by the protobuf exposition. */
  readonly native?: () => NativeBuckets | undefined;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly values: readonly MetricValue[];
}

/** Anything a registry can expose: a family read when Prometheus scrapes. */
export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  get(): MetricFamily | Promise<MetricFamily>;
}

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The metrics of one exposition, in registration order. */
export class Registry {
  private readonly byName = new Map<string, Metric>();
  readonly contentType = TEXT_CONTENT_TYPE;

  /** Add `metric`; a different metric of the same name is an error (re-adding the same one is not). */
  registerMetric(metric: Metric): void {
    const cur = this.byName.get(metric.name);
    if (cur !== undefined && cur !== metric) throw new Error(`A metric with the name ${metric.name} has already been registered.`);
    this.byName.set(metric.name, metric);
  }

  getSingleMetric(name: string): Metric | undefined {
    return this.byName.get(name);
  }

  removeSingleMetric(name: string): void {
    this.byName.delete(name);
  }

  getMetricsAsArray(): Metric[] {
    return [...this.byName.values()];
  }

  clear(): void {
    this.byName.clear();
  }

  /** Every family with its current values (what the protobuf exposition encodes). */
  async getMetricsAsJSON(): Promise<MetricFamily[]> {
    return Promise.all(this.getMetricsAsArray().map((m) => m.get()));
  }

  /** The text exposition (format 0.0.4): families separated by a blank line, ending with a newline. */
  async metrics(): Promise<string> {
    const families = await this.getMetricsAsJSON();
    return `${families.map(formatFamily).join('\n\n')}\n`;
  }

  async getSingleMetricAsString(name: string): Promise<string> {
    const m = this.byName.get(name);
    if (m === undefined) throw new Error(`no metric named ${name}`);
    return formatFamily(await m.get());
  }
}

/** One family in the text format: HELP, TYPE, then one line per sample (no trailing newline). */
export function formatFamily(f: MetricFamily): string {
  let out = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}`;
  for (const v of f.values) out += `\n${v.metricName ?? f.name}${formatLabels(v.labels)} ${formatValue(v.value)}`;
  return out;
}

/** `{a="x",b="y"}` in the labels' own order, or '' for none. */
export function formatLabels(labels: LabelValues): string {
  let out = '';
  for (const k in labels) out += `${out === '' ? '{' : ','}${k}="${escapeLabelValue(labels[k]!)}"`;
  return out === '' ? '' : `${out}}`;
}

/** HELP text: backslash and line feed escaped. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value: backslash, line feed and double quote escaped; numbers as JavaScript writes them. */
export function escapeLabelValue(v: string | number): string {
  return typeof v === 'number' ? String(v) : escapeHelp(v).replace(/"/g, '\\"');
}

/** A sample value as the format spells it: NaN, +Inf, -Inf, else JavaScript's shortest round-trip form. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** A series of a labelled metric: its labels as first given, and its current value. */
interface Series {
  readonly labels: LabelValues;
  value: number;
}

export interface MetricConfig<Self> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
  /** Registries to add it to (none: a metric nobody scrapes, as tests or an unconfigured component use). */
  readonly registers?: readonly Registry[];
  /** Called at each scrape before the values are read, to set them from the component's own counters. */
  readonly collect?: (this: Self) => void;
}

/** What labelled counters, gauges and histograms share: validation, series by label set, reset, collect. */
abstract class LabelledMetric<S extends Series, Self> implements Metric {
  readonly name: string;
  readonly help: string;
  abstract readonly type: MetricType;
  protected readonly labelNames: readonly string[];
  private readonly sortedLabelNames: readonly string[];
  private readonly collectFn: ((this: Self) => void) | undefined;
  protected series = new Map<string, S>();
  /** Bumped by reset, so bound children find their series again. */
  protected generation = 0;

  constructor(config: MetricConfig<Self>) {
    if (!config.help) throw new Error(`metric ${config.name}: help text is required`);
    if (!METRIC_NAME.test(config.name)) throw new Error(`invalid metric name ${JSON.stringify(config.name)}`);
    this.name = config.name;
    this.help = config.help;
    this.labelNames = [...(config.labelNames ?? [])];
    for (const l of this.labelNames) if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new Error(`metric ${config.name}: invalid label name ${JSON.stringify(l)}`);
    this.sortedLabelNames = [...this.labelNames].sort();
    this.collectFn = config.collect;
    for (const r of config.registers ?? []) r.registerMetric(this);
  }

  protected abstract newSeries(labels: LabelValues): S;
  protected abstract samples(): MetricValue[];

  /** Forget every series; one without labels starts again at zero. */
  reset(): void {
    this.series = new Map();
    this.generation++;
  }

  get(): MetricFamily {
    this.collectFn?.call(this as unknown as Self);
    // A metric without labels always has its one series, 0 until set.
    if (this.labelNames.length === 0 && this.series.size === 0) this.seriesOf({});
    return { name: this.name, help: this.help, type: this.type, values: this.samples() };
  }

  /** The series of `labels`, created on first use (allocates only then and for the lookup key). */
  protected seriesOf(labels: AnyLabels): S {
    let key = '';
    let matched = 0;
    for (const n of this.sortedLabelNames) {
      const v = labels[n];
      if (v !== undefined) {
        key += `${key === '' ? '' : ','}${n}:${v}`;
        matched++;
      }
    }
    let given = 0;
    for (const k in labels) if (labels[k] !== undefined) given++;
    if (given !== matched) {
      const unknown = Object.keys(labels).find((k) => !this.labelNames.includes(k));
      throw new Error(`metric ${this.name}: label "${unknown}" is not one of its labels (${this.labelNames.join(', ') || 'none'})`);
    }
    let s = this.series.get(key);
    if (s === undefined) {
      const copy: Record<string, string | number> = {};
      for (const k in labels) if (labels[k] !== undefined) copy[k] = labels[k];
      this.series.set(key, (s = this.newSeries(copy)));
    }
    return s;
  }

  /** Label values given positionally (in labelNames order) or as an object. */
  protected labelsFrom(args: readonly (string | number | AnyLabels)[]): AnyLabels {
    if (args.length === 1 && typeof args[0] === 'object') return args[0];
    if (args.length !== this.labelNames.length) throw new Error(`metric ${this.name}: ${args.length} label values given for ${this.labelNames.length} labels (${this.labelNames.join(', ')})`);
    const out: Record<string, string | number> = {};
    this.labelNames.forEach((n, i) => (out[n] = args[i] as string | number));
    return out;
  }

  /** A handle on one series that survives reset (it finds its series again after one). */
  protected bind(labels: AnyLabels): { series(): S } {
    let s = this.seriesOf(labels);
    let gen = this.generation;
    return {
      series: () => {
        if (gen !== this.generation) {
          s = this.seriesOf(labels);
          gen = this.generation;
        }
        return s;
      },
    };
  }
}

/** Counters and gauges: one number per series. */
abstract class ValueMetric<Self> extends LabelledMetric<Series, Self> {
  protected newSeries(labels: LabelValues): Series {
    return { labels, value: 0 };
  }

  protected samples(): MetricValue[] {
    return [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value }));
  }
}

function checkFinite(name: string, v: number): void {
  if (!Number.isFinite(v)) throw new TypeError(`metric ${name}: value is not a finite number: ${v}`);
}

function checkIncrement(name: string, v: number): void {
  checkFinite(name, v);
  if (v < 0) throw new Error(`metric ${name}: a counter cannot decrease (inc by ${v})`);
}

/** A child of a counter bound to one label set: `inc` allocates nothing. */
export interface CounterChild {
  inc(value?: number): void;
}

/** A monotonically increasing count per label set. */
export class Counter<T extends string = string> extends ValueMetric<Counter<T>> {
  readonly type = 'counter';

  inc(labels?: LabelsOf<T> | number, value?: number): void {
    const [l, v]: [AnyLabels, number] = typeof labels === 'object' ? [labels, value ?? 1] : [{}, labels ?? 1];
    checkIncrement(this.name, v);
    this.seriesOf(l).value += v;
  }

  labels(...values: (string | number | LabelsOf<T>)[]): CounterChild {
    const h = this.bind(this.labelsFrom(values));
    const name = this.name;
    return {
      inc: (v = 1) => {
        checkIncrement(name, v);
        h.series().value += v;
      },
    };
  }
}

/** A child of a gauge bound to one label set: none of its methods allocates. */
export interface GaugeChild {
  set(value: number): void;
  inc(value?: number): void;
  dec(value?: number): void;
}

/** A value that goes up and down, per label set. */
export class Gauge<T extends string = string> extends ValueMetric<Gauge<T>> {
  readonly type = 'gauge';

  set(labels: LabelsOf<T> | number, value?: number): void {
    const [l, v]: [AnyLabels, number | undefined] = typeof labels === 'object' ? [labels, value] : [{}, labels];
    if (typeof v !== 'number') throw new TypeError(`metric ${this.name}: set needs a value`);
    checkFinite(this.name, v);
    this.seriesOf(l).value = v;
  }

  inc(labels?: LabelsOf<T> | number, value?: number): void {
    const [l, v]: [AnyLabels, number] = typeof labels === 'object' ? [labels, value ?? 1] : [{}, labels ?? 1];
    checkFinite(this.name, v);
    this.seriesOf(l).value += v;
  }

  dec(labels?: LabelsOf<T> | number, value?: number): void {
    const [l, v]: [AnyLabels, number] = typeof labels === 'object' ? [labels, value ?? 1] : [{}, labels ?? 1];
    this.inc(l as LabelsOf<T>, -v);
  }

  labels(...values: (string | number | LabelsOf<T>)[]): GaugeChild {
    const h = this.bind(this.labelsFrom(values));
    const name = this.name;
    return {
      set: (v) => { checkFinite(name, v); h.series().value = v; },
      inc: (v = 1) => { checkFinite(name, v); h.series().value += v; },
      dec: (v = 1) => { checkFinite(name, v); h.series().value -= v; },
    };
  }
}

interface HistogramSeries extends Series {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array;
  count: number;
}

/** Prometheus's default buckets (seconds). */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

export interface HistogramConfig<T extends string = string> extends MetricConfig<Histogram<T>> {
  /** Upper bounds, increasing; +Inf is implied. */
  readonly buckets?: readonly number[];
}

/** A child of a histogram bound to one label set: `observe` allocates nothing. */
export interface HistogramChild {
  observe(value: number): void;
}

/** Observations counted in fixed buckets per label set, with their sum and count. */
export class Histogram<T extends string = string> extends LabelledMetric<HistogramSeries, Histogram<T>> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];

  constructor(config: HistogramConfig<T>) {
    const bounds = [...(config.buckets ?? DEFAULT_BUCKETS)];
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]!) || (i > 0 && bounds[i]! <= bounds[i - 1]!)) throw new Error(`metric ${config.name}: buckets must be finite and increasing (${bounds.join(', ')})`);
    }
    if (config.labelNames?.includes('le')) throw new Error(`metric ${config.name}: "le" is reserved for the bucket bound`);
    super(config);
    this.bounds = bounds;
  }

  protected newSeries(labels: LabelValues): HistogramSeries {
    return { labels, value: 0, count: 0, counts: new Float64Array(this.bounds.length + 1) };
  }

  protected samples(): MetricValue[] {
    const out: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        out.push({ metricName: bucket, labels: { le: this.bounds[i]!, ...s.labels }, value: acc });
      }
      out.push({ metricName: bucket, labels: { le: '+Inf', ...s.labels }, value: s.count });
      out.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.value });
      out.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return out;
  }

  observe(labels: LabelsOf<T> | number, value?: number): void {
    const [l, v]: [AnyLabels, number | undefined] = typeof labels === 'object' ? [labels, value] : [{}, labels];
    if (typeof v !== 'number') throw new TypeError(`metric ${this.name}: observe needs a value`);
    checkFinite(this.name, v);
    this.record(this.seriesOf(l), v);
  }

  labels(...values: (string | number | LabelsOf<T>)[]): HistogramChild {
    const h = this.bind(this.labelsFrom(values));
    return {
      observe: (v) => {
        checkFinite(this.name, v);
        this.record(h.series(), v);
      },
    };
  }

  private record(s: HistogramSeries, v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    s.counts[i]!++;
    s.count++;
    s.value += v;
  }
}

/** A family computed when Prometheus scrapes from the component's own state (nothing kept here). */
export function collectedMetric(name: string, help: string, type: MetricType, collect: () => MetricValue[]): Metric {
  if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
  return { name, help, type, get: () => ({ name, help, type, values: collect() }) };
}
