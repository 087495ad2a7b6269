// The latency histogram of one stats window: HDR geometry (the bins, quantiles and equivalent-value
// ranges of hdr-histogram-js with the same settings), but the counts live in 32-bin blocks allocated on
// first use, 16 bits wide until a bin overflows. A window's latencies usually span a few octaves, so it
// holds a few blocks (~1–2 KB) instead of the dense 10 KB array (2 significant digits, 1 µs–60 s).

/** Bins per block: a power of two (a block is 64 bytes while counts are 16-bit). */
const BLOCK_BITS = 5;
const BLOCK = 1 << BLOCK_BITS;
const BLOCK_MASK = BLOCK - 1;
const U16_MAX = 0xffff;
/** Bytes of a histogram's own fields and its two typed-array headers, roughly (V8, 64-bit). */
const FIXED_BYTES = 320;

/** Smallest power of two ≥ x (x ≥ 1). */
const pow2AtLeast = (x: number): number => 2 ** Math.ceil(Math.log2(x));

export class LatencyHistogram {
  readonly lowestDiscernibleValue = 1;
  readonly highestTrackableValue: number;
  readonly numberOfSignificantValueDigits: number;
  /** Bins per octave above the first linear range: values in a bin differ by at most 1/subBucketHalfCount. */
  readonly subBucketHalfCount: number;
  readonly subBucketCount: number;
  private readonly halfCountMagnitude: number;
  /** Bins in the dense HDR layout (indices 0..countsArrayLength-1), whether or not their block exists. */
  readonly countsArrayLength: number;
  /** Block number → 1 + its place in `counts` (0 = not allocated yet). */
  private readonly blockAt: Uint16Array;
  /** The allocated blocks, back to back; grows by doubling; 32-bit once any bin passes 65,535. */
  private counts: Uint16Array | Uint32Array;
  private blocksUsed = 0;
  totalCount = 0;
  /** Largest value recorded (not rounded to its bin), 0 when empty. */
  maxValue = 0;

  constructor(highestTrackableValue: number, significantDigits: number) {
    if (!(highestTrackableValue >= 2)) throw new RangeError(`highestTrackableValue must be ≥ 2, got ${highestTrackableValue}`);
    if (!Number.isInteger(significantDigits) || significantDigits < 1 || significantDigits > 4) throw new RangeError(`significantDigits must be an integer in 1..4, got ${significantDigits}`);
    this.highestTrackableValue = highestTrackableValue;
    this.numberOfSignificantValueDigits = significantDigits;
    // As HDR: unit resolution up to 2 × 10^digits, rounded up to a power of two.
    this.subBucketCount = pow2AtLeast(2 * 10 ** significantDigits);
    this.subBucketHalfCount = this.subBucketCount / 2;
    this.halfCountMagnitude = Math.log2(this.subBucketHalfCount);
    let buckets = 1;
    for (let untrackable = this.subBucketCount; untrackable <= highestTrackableValue; untrackable *= 2) buckets++;
    this.countsArrayLength = (buckets + 1) * this.subBucketHalfCount;
    this.blockAt = new Uint16Array(Math.ceil(this.countsArrayLength / BLOCK));
    this.counts = new Uint16Array(BLOCK * 2);
  }

  /** Record one value (an integer in [0, highestTrackableValue]; the caller clamps). */
  recordValue(value: number): void {
    this.addAtIndex(this.countsArrayIndex(value), 1);
    this.totalCount += 1;
    if (value > this.maxValue) this.maxValue = value;
  }

  reset(): void {
    // Blocks stay allocated: a window slot is reused every ring turn with a similar spread of latencies.
    this.counts.fill(0, 0, this.blocksUsed * BLOCK);
    this.totalCount = 0;
    this.maxValue = 0;
  }

  /** Add another histogram of the same geometry into this one. */
  add(other: LatencyHistogram): void {
    if (other.countsArrayLength !== this.countsArrayLength || other.subBucketCount !== this.subBucketCount) {
      throw new RangeError('LatencyHistogram.add: histograms of different geometry');
    }
    const ob = other.blockAt;
    for (let b = 0; b < ob.length; b++) {
      const slot = ob[b]!;
      if (slot === 0) continue;
      const base = (slot - 1) << BLOCK_BITS;
      for (let k = 0; k < BLOCK; k++) {
        const c = other.counts[base + k]!;
        if (c !== 0) this.addAtIndex((b << BLOCK_BITS) | k, c);
      }
    }
    this.totalCount += other.totalCount;
    if (other.maxValue > this.maxValue) this.maxValue = other.maxValue;
  }

  /** Append this histogram's non-zero bins to `out` as (index, count) pairs: a compact copy to ship elsewhere. */
  exportBins(out: number[]): void {
    const bat = this.blockAt;
    for (let b = 0; b < bat.length; b++) {
      const slot = bat[b]!;
      if (slot === 0) continue;
      const base = (slot - 1) << BLOCK_BITS;
      for (let k = 0; k < BLOCK; k++) {
        const c = this.counts[base + k]!;
        if (c !== 0) out.push((b << BLOCK_BITS) | k, c);
      }
    }
  }

  /**
   * Add bins exported by exportBins() from a histogram of the same geometry (`maxValue`: its largest
   * value). Throws a RangeError on a pair that is not a bin of this geometry, before changing anything.
   */
  addBins(pairs: readonly number[], maxValue: number): void {
    let total = 0;
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const index = pairs[i]!;
      const count = pairs[i + 1]!;
      if (!Number.isInteger(index) || index < 0 || index >= this.countsArrayLength || !Number.isInteger(count) || count < 0) throw new RangeError(`bin (${index}, ${count}) is not a bin of this histogram`);
      total += count;
    }
    for (let i = 0; i + 1 < pairs.length; i += 2) if (pairs[i + 1]! > 0) this.addAtIndex(pairs[i]!, pairs[i + 1]!);
    this.totalCount += total;
    if (maxValue > this.maxValue) this.maxValue = maxValue;
  }

  getCountAtIndex(index: number): number {
    const slot = this.blockAt[index >> BLOCK_BITS]!;
    return slot === 0 ? 0 : this.counts[((slot - 1) << BLOCK_BITS) | (index & BLOCK_MASK)]!;
  }

  countsArrayIndex(value: number): number {
    const bucket = this.bucketIndex(value);
    const sub = Math.floor(value / 2 ** bucket);
    return ((bucket + 1) << this.halfCountMagnitude) + sub - this.subBucketHalfCount;
  }

  valueFromIndex(index: number): number {
    let bucket = (index >> this.halfCountMagnitude) - 1;
    let sub = (index & (this.subBucketHalfCount - 1)) + this.subBucketHalfCount;
    if (bucket < 0) {
      sub -= this.subBucketHalfCount;
      bucket = 0;
    }
    return sub * 2 ** bucket;
  }

  lowestEquivalentValue(value: number): number {
    const bucket = this.bucketIndex(value);
    return Math.floor(value / 2 ** bucket) * 2 ** bucket;
  }

  sizeOfEquivalentValueRange(value: number): number {
    const bucket = this.bucketIndex(value);
    const sub = Math.floor(value / 2 ** bucket);
    return 2 ** (sub >= this.subBucketCount ? bucket + 1 : bucket);
  }

  highestEquivalentValue(value: number): number {
    return this.lowestEquivalentValue(value) + this.sizeOfEquivalentValueRange(value) - 1;
  }

  /** Values recorded in bins wholly below `value`'s bin (a sign test's count, to bin resolution). */
  countBelow(value: number): number {
    const end = Math.min(this.countsArrayIndex(value), this.countsArrayLength);
    let n = 0;
    for (let i = 0; i < end; i++) n += this.getCountAtIndex(i);
    return n;
  }

  /** As HDR: the highest value equivalent to the bin where the cumulative count reaches ⌈p/100 × total⌉. */
  getValueAtPercentile(percentile: number): number {
    const p = Math.min(percentile, 100);
    const fp = (p / 100) * this.totalCount;
    const ulp = 2 ** (Math.floor(Math.log2(fp)) - 52);
    const target = Math.max(Math.ceil(fp - ulp), 1);
    let cum = 0;
    for (let i = 0; i < this.countsArrayLength; i++) {
      cum += this.getCountAtIndex(i);
      if (cum >= target) {
        const v = this.valueFromIndex(i);
        return percentile === 0 ? this.lowestEquivalentValue(v) : this.highestEquivalentValue(v);
      }
    }
    return 0;
  }

  /** Mean of the recorded values, each counted at the middle of its bin (as HDR). */
  get mean(): number {
    if (this.totalCount === 0) return 0;
    let sum = 0;
    for (let b = 0; b < this.blockAt.length; b++) {
      const slot = this.blockAt[b]!;
      if (slot === 0) continue;
      const base = (slot - 1) << BLOCK_BITS;
      for (let k = 0; k < BLOCK; k++) {
        const c = this.counts[base + k]!;
        if (c === 0) continue;
        sum += this.middleOfBin((b << BLOCK_BITS) | k) * c;
      }
    }
    return sum / this.totalCount;
  }

  /**
   * Moments of the recorded values' natural logs, each value taken at the middle of its bin and its log
   * clipped to [lo, hi] (a few wild requests then weigh no more than a slow one): out[0] count, out[1] sum,
   * out[2] sum of squares. Walks only the allocated blocks; allocates nothing.
   */
  clippedLogMoments(lo: number, hi: number, out: Float64Array): Float64Array {
    out[0] = out[1] = out[2] = 0;
    for (let b = 0; b < this.blockAt.length; b++) {
      const slot = this.blockAt[b]!;
      if (slot === 0) continue;
      const base = (slot - 1) << BLOCK_BITS;
      for (let k = 0; k < BLOCK; k++) {
        const c = this.counts[base + k]!;
        if (c === 0) continue;
        let x = Math.log(Math.max(1, this.middleOfBin((b << BLOCK_BITS) | k)));
        x = x < lo ? lo : x > hi ? hi : x;
        out[0] += c;
        out[1] += c * x;
        out[2] += c * x * x;
      }
    }
    return out;
  }

  /** Bytes this histogram holds: its blocks' store, the block directory and its own fields. */
  get estimatedFootprintInBytes(): number {
    return this.counts.byteLength + this.blockAt.byteLength + FIXED_BYTES;
  }

  /** Blocks allocated so far (each covers 32 consecutive bins). */
  get blockCount(): number {
    return this.blocksUsed;
  }

  /** The value a bin stands for in means (as HDR): the middle of its equivalent range. */
  private middleOfBin(index: number): number {
    const v = this.valueFromIndex(index);
    return this.lowestEquivalentValue(v) + Math.floor(this.sizeOfEquivalentValueRange(v) / 2);
  }

  private bucketIndex(value: number): number {
    const b = Math.floor(Math.log2(value)) - this.halfCountMagnitude;
    return b > 0 ? b : 0;
  }

  private addAtIndex(index: number, n: number): void {
    if (index < 0 || index >= this.countsArrayLength) throw new RangeError(`value at index ${index} is outside the histogram's range (highest ${this.highestTrackableValue})`);
    const block = index >> BLOCK_BITS;
    let slot = this.blockAt[block]!;
    if (slot === 0) slot = this.allocateBlock(block);
    const at = ((slot - 1) << BLOCK_BITS) | (index & BLOCK_MASK);
    const c = this.counts[at]! + n;
    if (c > U16_MAX && this.counts instanceof Uint16Array) this.counts = Uint32Array.from(this.counts);
    this.counts[at] = c;
  }

  /** First value in a block: its place in the store (grown by doubling, so this allocates rarely). */
  private allocateBlock(block: number): number {
    if ((this.blocksUsed + 1) * BLOCK > this.counts.length) {
      // Never beyond every block: a histogram using all its bins costs what the dense array would.
      const length = Math.min(this.counts.length * 2, this.blockAt.length * BLOCK);
      const grown = this.counts instanceof Uint16Array ? new Uint16Array(length) : new Uint32Array(length);
      grown.set(this.counts);
      this.counts = grown;
    }
    this.blockAt[block] = ++this.blocksUsed;
    return this.blocksUsed;
  }
}
