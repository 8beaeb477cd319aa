// What every scenario gets: the run's size (quick or full), a log line
// printer, and the per-client baseline measured by the programming scenario
// (the restart and pickup baselines reuse it).

export interface Sizes {
  /** Clients appearing at once, measured for our daemon. */
  readonly programming: readonly number[];
  /** Two client counts for the one-process-per-client baseline; the rest is extrapolated from them. */
  readonly baselinePoints: readonly [number, number];
  readonly forwardingClients: number;
  readonly forwardingSeconds: number;
  readonly forwardingRepeats: number;
  readonly pickupClients: number;
  /** Clients already classified while more are picked up one at a time (the "one client added at 50k"), and how many. */
  readonly pickupAmong: number;
  readonly pickupAmongSamples: number;
  readonly restartClients: number;
  readonly footprintClients: number;
  /** The window of the no-client baseline. */
  readonly footprintWindowS: number;
  /** The window with the clients: as long as the whole reads' period (5 minutes), so that one of them is averaged in, as on a gateway left running. */
  readonly footprintFullWindowS: number;
  /** Quiet time after the clients arrive, before the window starts. */
  readonly footprintSettleS: number;
}

export const FULL: Sizes = {
  programming: [1000, 10_000, 50_000],
  baselinePoints: [500, 1000],
  forwardingClients: 50_000,
  forwardingSeconds: 5,
  forwardingRepeats: 5,
  pickupClients: 100,
  pickupAmong: 50_000,
  pickupAmongSamples: 30,
  restartClients: 10_000,
  footprintClients: 50_000,
  footprintWindowS: 60,
  footprintFullWindowS: 300,
  // After a burst of 50,000, V8's collections of what it left (its memory reducer) and its optimizing compiles take
  // about half a percent of a core for a minute or so: that is the burst's cost, not idling's.
  footprintSettleS: 60,
};

/** Every scenario, smaller and shorter: proves the suite works in under two minutes (CI). */
export const QUICK: Sizes = {
  programming: [1000, 5000],
  baselinePoints: [100, 200],
  forwardingClients: 2000,
  forwardingSeconds: 1,
  forwardingRepeats: 1,
  pickupClients: 20,
  pickupAmong: 5000,
  pickupAmongSamples: 10,
  restartClients: 2000,
  footprintClients: 5000,
  footprintWindowS: 4,
  footprintFullWindowS: 4,
  footprintSettleS: 2,
};

export interface BenchContext {
  readonly quick: boolean;
  readonly sizes: Sizes;
  log(message: string): void;
  /** Measured by the programming scenario: the one-iptables-per-client loop at two sizes (ms). */
  baselinePoints?: readonly [readonly [number, number], readonly [number, number]];
}
