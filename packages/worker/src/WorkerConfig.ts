import { Config, Context, Duration, Layer } from "effect"

export interface WorkerOptions {
  /** How often pending holds past their deadline are expired. */
  readonly holdSweepInterval: Duration.Duration
  /** How often lots past their expiry are moved to the expired-credit account. */
  readonly grantSweepInterval: Duration.Duration
  /** How long the inbox loop waits after draining the pending billing events. */
  readonly inboxPollInterval: Duration.Duration
  /** Billing events claimed per batch. */
  readonly batchLimit: number
  /** How long a claimed batch stays with this worker before another may claim it again. */
  readonly leaseMs: number
  /** Attempts a billing event gets before it is parked as dead for an operator. */
  readonly maxAttempts: number
  /** How often the ledger forgets old replay records of holds, captures and voids. */
  readonly replaySweepInterval: Duration.Duration
  /** How long those records are kept: a retry of a call's write with the same key within it is a replay. */
  readonly replayRetention: Duration.Duration
}

export const defaultWorkerOptions: WorkerOptions = {
  // a hold nobody settles keeps its credit reserved until swept, so sweep often
  holdSweepInterval: Duration.seconds(1),
  grantSweepInterval: Duration.seconds(60),
  inboxPollInterval: Duration.seconds(1),
  batchLimit: 100,
  leaseMs: 60_000,
  maxAttempts: 10,
  replaySweepInterval: Duration.hours(1),
  replayRetention: Duration.days(7)
}

/** An integer setting from `min` (default 1) to `max`, `fallback` when unset; a bad value fails naming the variable. */
export const positiveInteger = (name: string, max: number, fallback: number, min = 1) =>
  Config.integer(name).pipe(
    Config.validate({ message: `Expected an integer from ${min} to ${max}`, validation: (n) => n >= min && n <= max }),
    Config.withDefault(fallback)
  )

/** A duration setting in milliseconds, from 1 ms to one day. */
export const millis = (name: string, fallback: Duration.Duration) =>
  positiveInteger(name, 86_400_000, Duration.toMillis(fallback)).pipe(Config.map(Duration.millis))

/**
 * `WORKER_HOLD_SWEEP_MS` (default 1000), `WORKER_GRANT_SWEEP_MS` (60000), `WORKER_INBOX_POLL_MS`
 * (1000), `WORKER_BATCH_LIMIT` (100), `WORKER_LEASE_MS` (60000), `WORKER_INBOX_MAX_ATTEMPTS` (10),
 * `WORKER_REPLAY_SWEEP_MS` (3600000) and `WORKER_REPLAY_RETENTION_HOURS` (168, from 24 to a year).
 */
export const WorkerEnvConfig: Config.Config<WorkerOptions> = Config.all({
  holdSweepInterval: millis("HOLD_SWEEP_MS", defaultWorkerOptions.holdSweepInterval),
  grantSweepInterval: millis("GRANT_SWEEP_MS", defaultWorkerOptions.grantSweepInterval),
  inboxPollInterval: millis("INBOX_POLL_MS", defaultWorkerOptions.inboxPollInterval),
  batchLimit: positiveInteger("BATCH_LIMIT", 10_000, defaultWorkerOptions.batchLimit),
  leaseMs: positiveInteger("LEASE_MS", 3_600_000, defaultWorkerOptions.leaseMs),
  maxAttempts: positiveInteger("INBOX_MAX_ATTEMPTS", 1_000, defaultWorkerOptions.maxAttempts),
  replaySweepInterval: millis("REPLAY_SWEEP_MS", defaultWorkerOptions.replaySweepInterval),
  // at least a day: longer than any hold or lease lives, so a settlement's retries are replays
  replayRetention: positiveInteger(
    "REPLAY_RETENTION_HOURS",
    8_760,
    Duration.toHours(defaultWorkerOptions.replayRetention),
    24
  ).pipe(Config.map(Duration.hours))
}).pipe(Config.nested("WORKER"))

/** The worker's intervals and batch sizes; the defaults apply unless a layer provides others. */
export class WorkerConfig extends Context.Reference<WorkerConfig>()("@tollgate/worker/WorkerConfig", {
  defaultValue: (): WorkerOptions => defaultWorkerOptions
}) {
  /** The defaults with `options` over them. */
  static readonly layer = (options: Partial<WorkerOptions>): Layer.Layer<WorkerConfig> =>
    Layer.succeed(WorkerConfig, { ...defaultWorkerOptions, ...options })

  /** Read from the environment (see `WorkerEnvConfig`); a bad value fails at start naming the variable. */
  static readonly fromEnv = Layer.effect(WorkerConfig, WorkerEnvConfig)
}
