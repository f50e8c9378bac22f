import net from 'node:net';

/**
 * A TCP proxy the test owns, standing between a process and PostgreSQL or Redis, so the test can
 * cut the dependency off (every connection dropped, new ones refused) or freeze it (a network
 * blackhole: connections stay open and new ones are accepted, but no byte moves either way)
 * without touching the shared server, and restore it.
 */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private cutOff = false;
  private frozen = false;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = net.createServer((client) => proxy!.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new TcpProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** The proxy's URL for `url`'s service: same credentials and database, proxy's host and port. */
  urlFor(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** Drops every open connection and refuses new ones until `restore()`. */
  cut(): void {
    this.cutOff = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /**
   * Stops forwarding bytes until `restore()`: open connections stay open with whatever was sent
   * held back, and new connections are accepted and held the same way. What was held is delivered
   * on `restore()`, as TCP retransmission delivers it when a blackholed route comes back.
   */
  freeze(): void {
    this.frozen = true;
    for (const s of this.sockets) s.pause();
  }

  /** Ends a `cut()` or a `freeze()`: new connections are forwarded again, held bytes move on. */
  restore(): void {
    this.cutOff = false;
    if (!this.frozen) return;
    this.frozen = false;
    for (const s of this.sockets) s.resume();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    if (this.cutOff) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(from);
      from.on('data', (chunk: Buffer) => {
        if (to.write(chunk)) return;
        from.pause();
        to.once('drain', () => {
          if (!this.frozen) from.resume();
        });
      });
      from.on('end', () => to.end());
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
      if (this.frozen) from.pause();
    }
  }
}
