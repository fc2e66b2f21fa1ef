/**
 * The demo's outside world: a partner's webhook receiver and pull client that write every change
 * set they get under ./demo-output, and the school's agent as a real child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { verifyWebhook, WebhookHeader } from '@keystage/formats';

export interface Received {
  key: string;
  via: 'webhook' | 'pull';
  file: string;
  duplicate: boolean;
}

const EXT: Record<string, string> = {
  'application/x-ndjson': 'ndjson',
  'application/json': 'json',
  'text/csv': 'csv',
};

function extensionOf(contentType: string | null | undefined): string {
  const base = (contentType ?? '').split(';')[0]!.trim();
  return EXT[base] ?? 'bin';
}

/**
 * A partner's webhook endpoint: verifies the signature (as docs/delivery-formats.md tells partners
 * to), dedupes by idempotency key, writes each change set once under `<dir>/webhook/`.
 */
export class WebhookReceiver {
  private server: Server | undefined;
  private readonly seen = new Set<string>();
  secrets: string[] = [];
  /** Answer 503 to everything (the demo test stops the receiver "for a while" with this). */
  down = false;

  constructor(
    private readonly dir: string,
    private readonly onReceived: (r: Received) => void,
  ) {}

  async start(port = 0): Promise<string> {
    mkdirSync(join(this.dir, 'webhook'), { recursive: true });
    this.server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (p: Buffer) => parts.push(p));
      req.on('end', () => {
        if (this.down) {
          res.writeHead(503).end();
          return;
        }
        const body = Buffer.concat(parts);
        const check = verifyWebhook({
          secrets: this.secrets,
          header: String(req.headers[WebhookHeader.Signature.toLowerCase()] ?? ''),
          body,
        });
        if (!check.ok) {
          res.writeHead(401, { 'content-type': 'text/plain' }).end(check.reason);
          return;
        }
        const key = String(req.headers[WebhookHeader.IdempotencyKey.toLowerCase()] ?? '');
        if (!/^[A-Za-z0-9._-]{1,200}$/.test(key)) {
          res.writeHead(400).end();
          return;
        }
        const file = join(this.dir, 'webhook', `${key}.${extensionOf(req.headers['content-type'])}`);
        const duplicate = this.seen.has(key) || existsSync(file);
        if (!duplicate) writeFileSync(file, body);
        this.seen.add(key);
        this.onReceived({ key, via: 'webhook', file, duplicate });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/keystage`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A partner polling its pull feed: downloads each change set, writes it, acknowledges. */
export class PullClient {
  private timer: NodeJS.Timeout | undefined;
  private cursor = 0;
  private busy = false;

  constructor(
    private readonly baseUrl: string,
    private readonly partnerId: string,
    private readonly apiKey: string,
    private readonly dir: string,
    private readonly onReceived: (r: Received) => void,
  ) {}

  /** The feed cursor is the partner's to keep: saved after every acknowledged change set. */
  private get cursorFile(): string {
    return join(this.dir, 'pull', '.cursor');
  }

  start(intervalMs = 500): void {
    mkdirSync(join(this.dir, 'pull'), { recursive: true });
    if (existsSync(this.cursorFile)) this.cursor = Number(readFileSync(this.cursorFile, 'utf8')) || 0;
    this.timer = setInterval(() => void this.poll(), intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const headers = { 'x-api-key': this.apiKey };
      const res = await fetch(`${this.baseUrl}/partners/${this.partnerId}/feed?after=${this.cursor}`, {
        headers,
      });
      if (!res.ok) return;
      const feed = (await res.json()) as {
        items: {
          id: string;
          seq: number;
          idempotencyKey: string;
          contentType: string;
          contentPath: string;
        }[];
        cursor: number;
      };
      for (const item of feed.items) {
        const content = await fetch(`${this.baseUrl}${item.contentPath}`, { headers });
        if (!content.ok) return;
        const file = join(this.dir, 'pull', `${item.idempotencyKey}.${extensionOf(item.contentType)}`);
        const duplicate = existsSync(file);
        if (!duplicate) writeFileSync(file, Buffer.from(await content.arrayBuffer()));
        this.onReceived({ key: item.idempotencyKey, via: 'pull', file, duplicate });
        const ack = await fetch(`${this.baseUrl}/partners/${this.partnerId}/feed/ack`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify({ upTo: item.seq }),
        });
        if (!ack.ok) return;
        this.cursor = item.seq;
        writeFileSync(this.cursorFile, String(this.cursor));
      }
    } catch {
      // The control plane is restarting: try again at the next tick.
    } finally {
      this.busy = false;
    }
  }
}

/** The school's agent: enrolled once into `dataDir`, then run as a child process. */
export class DemoAgent {
  private child: ChildProcess | undefined;

  constructor(
    private readonly cli: string,
    private readonly dataDir: string,
  ) {}

  get enrolled(): boolean {
    return existsSync(join(this.dataDir, 'agent.json'));
  }

  /** Runs a CLI command as a child process (asynchronously: the control plane is in this process). */
  private run(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [this.cli, '--data-dir', this.dataDir, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
      child.on('error', reject);
      child.on('exit', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`keystage-agent ${args[0]} failed: ${output.trim().split('\n').pop()}`));
      });
    });
  }

  async enrol(url: string, token: string, misPath: string): Promise<void> {
    await this.run(['enrol', '--url', url, '--token', token, '--mis-kind', 'DEMO_SQLITE']);
    await this.run(['credentials', 'set', '--kind', 'DEMO_SQLITE', '--location', misPath, '--no-password']);
  }

  start(onLine: (line: string) => void): void {
    // As docs/school-guide.md recommends for the service: larger young-generation semi-spaces
    // for the row churn of an upload, and the garbage collector on the main thread only.
    const flags = ['--max-semi-space-size=64', '--single-threaded-gc'];
    this.child = spawn(process.execPath, [...flags, this.cli, '--data-dir', this.dataDir, 'run'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let i = buffer.indexOf('\n');
      while (i >= 0) {
        onLine(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        i = buffer.indexOf('\n');
      }
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
  }
}
