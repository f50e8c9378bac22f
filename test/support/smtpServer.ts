import net from 'node:net';
import PostalMime, { type Email } from 'postal-mime';
import { SMTPServer, type SMTPServerError } from 'smtp-server';

export interface ReceivedEmail {
  /** Envelope sender (MAIL FROM). */
  mailFrom: string;
  /** Envelope recipients (RCPT TO). */
  rcptTo: string[];
  /** The user the client logged in as; undefined when it did not log in. */
  user: string | undefined;
  /** The message exactly as it came over DATA. */
  raw: string;
  parsed: Email;
}

export interface TestSmtpServerOptions {
  /** Require a login with these credentials; without them the server offers no AUTH at all. */
  auth?: { user: string; pass: string };
  /** A refused login's reply repeats what the client sent (its AUTH PLAIN line, and the password), as a careless server might. */
  echoLogin?: boolean;
}

/** Where a programmed refusal is given: the reply to RCPT TO, or the reply after the message data. */
export type RefusalStage = 'RCPT' | 'DATA';

interface Refusal {
  code: number;
  message: string;
}

/**
 * A real SMTP server on 127.0.0.1 (smtp-server, plain text, no STARTTLS) that records every message
 * it accepts, envelope and parsed MIME, and refuses the next RCPT or DATA when told to.
 */
export class TestSmtpServer {
  readonly received: ReceivedEmail[] = [];
  /** Connections accepted so far, and those still open: a pooled client reuses one. */
  connectionCount = 0;
  openConnections = 0;
  private readonly refusals: Record<RefusalStage, Refusal[]> = { RCPT: [], DATA: [] };
  private readonly server: SMTPServer;

  private constructor(options: TestSmtpServerOptions) {
    const { auth } = options;
    this.server = new SMTPServer({
      logger: false,
      disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !auth,
      // Logins over plain text are refused by default; this server never offers TLS.
      allowInsecureAuth: true,
      disableReverseLookup: true,
      onConnect: (_session, callback) => {
        this.connectionCount++;
        this.openConnections++;
        callback();
      },
      onClose: () => {
        this.openConnections--;
      },
      onAuth: (login, _session, callback) => {
        if (auth && login.username === auth.user && login.password === auth.pass) {
          callback(null, { user: login.username });
          return;
        }
        const plain = Buffer.from(`\0${login.username}\0${login.password ?? ''}`).toString('base64');
        const echo = options.echoLogin ? ` (you sent AUTH PLAIN ${plain}, password ${login.password ?? ''})` : '';
        callback(smtpError(535, `authentication credentials invalid${echo}`));
      },
      onRcptTo: (_address, _session, callback) => {
        const refusal = this.refusals.RCPT.shift();
        callback(refusal ? smtpError(refusal.code, refusal.message) : null);
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const refusal = this.refusals.DATA.shift();
          if (refusal) {
            callback(smtpError(refusal.code, refusal.message));
            return;
          }
          const raw = Buffer.concat(chunks).toString('utf8');
          const { mailFrom, rcptTo } = session.envelope;
          // Recorded before the client hears 250, so a test can look as soon as its send resolves.
          PostalMime.parse(raw).then(
            (parsed) => {
              this.received.push({
                mailFrom: mailFrom ? mailFrom.address : '',
                rcptTo: rcptTo.map((r) => r.address),
                user: session.user as string | undefined,
                raw,
                parsed,
              });
              callback();
            },
            (err: unknown) => callback(smtpError(554, `unparseable message: ${String(err)}`)),
          );
        });
      },
    });
    this.server.on('error', () => {});
  }

  static async start(options: TestSmtpServerOptions = {}): Promise<TestSmtpServer> {
    const smtp = new TestSmtpServer(options);
    await new Promise<void>((resolve, reject) => {
      smtp.server.server.once('error', reject);
      smtp.server.listen(0, '127.0.0.1', () => resolve());
    });
    return smtp;
  }

  get port(): number {
    return (this.server.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Answers the next command at `stage` with `code message` (e.g. 550, '5.1.1 no such user'). */
  respondWith(code: number, message: string, stage: RefusalStage = 'RCPT'): void {
    this.refusals[stage].push({ code, message });
  }

  /** The messages received with this `X-Notification-Id`. */
  forId(id: string): ReceivedEmail[] {
    return this.received.filter((m) => header(m, 'x-notification-id') === id);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // smtp-server otherwise waits 30 s for clients to leave; a test has no use for the grace.
    for (const connection of this.server.connections) connection.close();
    await closed;
  }
}

/** The value of a header of a received message (the first, when it occurs more than once). */
export function header(message: ReceivedEmail, name: string): string | undefined {
  return message.parsed.headers.find((h) => h.key === name.toLowerCase())?.value;
}

function smtpError(code: number, message: string): SMTPServerError {
  const err: SMTPServerError = new Error(message);
  err.responseCode = code;
  return err;
}

/**
 * A TCP server that accepts connections and never says a word: an SMTP server that hangs before
 * its greeting.
 */
export class SilentServer {
  acceptedCount = 0;
  /** Connections the client has closed (or that were reset). */
  closedCount = 0;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static async start(): Promise<SilentServer> {
    let silent: SilentServer | undefined;
    const server = net.createServer((socket) => silent!.accept(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    silent = new SilentServer(server);
    return silent;
  }

  get url(): string {
    return `smtp://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.acceptedCount++;
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.closedCount++;
    });
    socket.resume();
  }
}
