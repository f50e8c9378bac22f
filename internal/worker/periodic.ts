/** Each wait is the interval times a random factor in [1 - JITTER, 1 + JITTER], so workers drift apart. */
const JITTER = 0.2;

/**
 * Runs `task` now and then every `intervalMs` (jittered) after the previous run ends, never two at
 * once; `stop()` waits for a run under way. A failing run is reported to `onError` and the next
 * one goes ahead as usual.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** The first run comes after `firstDelayMs`; each next one an interval after the previous ends. */
  start(firstDelayMs = 0): void {
    this.schedule(firstDelayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.task()
        .catch(this.onError)
        .finally(() => {
          this.running = undefined;
          this.schedule(this.intervalMs * (1 - JITTER + Math.random() * 2 * JITTER));
        });
    }, delayMs);
  }
}
