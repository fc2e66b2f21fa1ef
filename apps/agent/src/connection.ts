import { statfs } from 'node:fs/promises';
import { sign } from '@keystage/crypto';
import {
  authSigningInput,
  compareVersions,
  createMessage,
  encodeChunkFrame,
  encodeMessage,
  MAX_FRAME_BYTES,
  type Message,
  type MessageBody,
  type MessageType,
  PROTOCOL_VERSION,
  parseMessage,
} from '@keystage/protocol';
import WebSocket from 'ws';
import { Backoff } from './backoff.js';
import type { DataDir } from './data-dir.js';
import { AgentError, EXIT_REFUSED } from './errors.js';
import type { JobOutbox, JobRunner } from './jobs.js';
import type { Logger } from './log.js';
import type { MisKind } from './mis.js';
import type { AgentState } from './state.js';
import { recordStatus } from './status.js';

export const AGENT_VERSION = '0.1.0';

export interface ConnectionOptions {
  state: AgentState;
  identityKey: string;
  dataDir: DataDir;
  jobs: JobRunner;
  log: Logger;
  misKind: MisKind;
  supervised: boolean;
  credentialsReady: () => boolean;
  misVersion: () => string | null;
  /** Overrides the control plane's heartbeat interval (tests). */
  heartbeatIntervalMs?: number | undefined;
}

/**
 * The agent's one link to the control plane. It dials out (the school opens no port), proves its
 * identity by signing the server's challenge, sends heartbeats, asks for pending work on every connect
 * and takes pushed jobs while connected. When the link drops it reconnects with exponential backoff
 * and jitter (100 ms → 10 s); when the control plane refuses it for good (revoked, unknown, wrong
 * protocol) it stops and says why.
 */
export class AgentConnection {
  private ws: WebSocket | undefined;
  private stopped = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private ackDeadline = 0;
  private readonly backoff = new Backoff();
  private readonly startedAt = Date.now();
  private lastError: { code: string; message: string; at: string } | null = null;
  /** The control plane takes chunks as binary frames (its `auth.ok` said protocol 1.3 or later). */
  private binaryChunks = false;
  /** The current connection is authenticated (its `auth.ok` arrived). */
  private ready = false;
  private finished: ((err?: AgentError) => void) | undefined;

  constructor(private readonly options: ConnectionOptions) {}

  /** Runs until stop() or a permanent refusal (rejects with an AgentError carrying EXIT_REFUSED). */
  run(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.finished = (err) => (err ? reject(err) : resolve());
      this.connect();
    });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    this.ws?.close(1000, 'agent stopping');
    this.finished?.();
  }

  noteError(code: string, message: string): void {
    this.lastError = { code, message: message.slice(0, 300), at: new Date().toISOString() };
  }

  private url(): string {
    const base = new URL(this.options.state.cloudUrl);
    base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    base.pathname = this.options.state.gatewayPath;
    return base.toString();
  }

  private connect(): void {
    if (this.stopped) return;
    const { log } = this.options;
    const ws = new WebSocket(this.url(), {
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      // Frames keep the mask bit but with an all-zero key, which ws (here and in the gateway)
      // takes as "nothing to XOR": ≈ 9 MB less to mask and unmask per million rows. Masking keeps
      // bytes chosen by untrusted script in a browser from reaching intermediaries as they were
      // written (RFC 6455 §10.3). No outsider chooses the agent's bytes: chunks are AES-GCM
      // ciphertext, every other frame is JSON the agent builds (no row data), and production links
      // are TLS besides.
      generateMask: (mask: Buffer) => {
        mask.fill(0);
      },
    });
    this.ws = ws;
    let authenticated = false;
    // Until this connection's auth.ok: nothing of a run goes out, and chunks as base64.
    this.ready = false;
    this.binaryChunks = false;
    ws.on('open', () => {
      log.info('connected, authenticating', { url: this.url() });
      this.send('hello', {
        agentId: this.options.state.agentId,
        agentVersion: AGENT_VERSION,
        os: `${process.platform} ${process.arch}`,
        misKind: this.options.misKind,
      });
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const parsed = parseMessage(data as Buffer);
      if (!parsed.ok) {
        log.warn('unreadable message from the control plane', { code: parsed.error.code });
        return;
      }
      void this.onMessage(parsed.message, () => {
        authenticated = true;
      }).catch((err: unknown) => log.error('failed to handle a message', { error: String(err) }));
    });
    ws.on('error', (err) => {
      this.noteError('link.error', err.message);
      log.warn('link error', { error: err.message });
    });
    ws.on('close', (code) => {
      clearInterval(this.heartbeatTimer);
      if (this.stopped) return;
      if (authenticated) this.backoff.reset();
      const delay = this.backoff.next();
      log.info('disconnected; reconnecting', { code, inMs: delay });
      recordStatus(this.options.dataDir, {
        connection: 'reconnecting',
        lastDisconnectAt: new Date().toISOString(),
      });
      setTimeout(() => this.connect(), delay);
    });
  }

  private async onMessage(message: Message, markAuthenticated: () => void): Promise<void> {
    const { log, state } = this.options;
    switch (message.type) {
      case 'challenge': {
        const input = authSigningInput({
          nonce: message.body.nonce,
          agentId: state.agentId,
          protocolVersion: PROTOCOL_VERSION,
        });
        this.send('auth', { agentId: state.agentId, signature: sign(input, this.options.identityKey) });
        return;
      }
      case 'auth.ok': {
        markAuthenticated();
        this.binaryChunks = compareVersions(message.protocolVersion, '1.3') >= 0;
        this.ready = true;
        log.info('authenticated', { sessionId: message.body.sessionId });
        recordStatus(this.options.dataDir, { connection: 'online', connectedAt: new Date().toISOString() });
        const interval = this.options.heartbeatIntervalMs ?? message.body.heartbeatIntervalMs;
        await this.heartbeat();
        clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = setInterval(() => void this.heartbeat(), interval);
        this.ackDeadline = Date.now() + interval * 2;
        this.send('work.pull', { maxJobs: 8 });
        this.options.jobs.onReconnect();
        return;
      }
      case 'heartbeat.ack':
        this.ackDeadline = Date.now() + (this.options.heartbeatIntervalMs ?? 30_000) * 2;
        return;
      case 'refused': {
        const { code, message: text, retryable } = message.body;
        log.error('refused by the control plane', { code, message: text });
        recordStatus(this.options.dataDir, {
          connection: 'refused',
          refusal: { code, message: text, at: new Date().toISOString() },
        });
        if (!retryable) {
          this.stopped = true;
          clearInterval(this.heartbeatTimer);
          this.ws?.close();
          this.finished?.(
            new AgentError(code, `the control plane refused this agent (${code}): ${text}`, EXIT_REFUSED),
          );
        }
        return;
      }
      case 'job.offer':
        await this.options.jobs.offer(message.body.job, this.outbox(message.id));
        return;
      case 'job.cancel':
        if (!this.options.jobs.cancel(message.body.runId))
          log.info('cancel for a run not running here', { runId: message.body.runId });
        return;
      case 'chunk.ack':
        this.options.jobs.onChunkAck(message.body);
        return;
      case 'run.ack':
        this.options.jobs.onRunAck(message.body.runId);
        recordStatus(this.options.dataDir, {
          lastRun: { runId: message.body.runId, outcome: message.body.outcome, at: new Date().toISOString() },
        });
        return;
      case 'error':
        log.warn('the control plane answered with an error', {
          code: message.body.code,
          message: message.body.message,
        });
        return;
      default:
        log.warn('unexpected message', { type: message.type });
    }
  }

  private outbox(replyTo: string): JobOutbox {
    return {
      accept: (body) => this.send('job.accept', body, replyTo),
      reject: (body) => {
        this.options.log.warn('job refused', { runId: body.runId, code: body.code, reason: body.message });
        this.send('job.reject', body, replyTo);
      },
    };
  }

  /** For the job runner: sends on the current socket; false when there is none or it is not yet authenticated. */
  sendIfOpen<T extends MessageType>(type: T, body: MessageBody<T>): boolean {
    if (!this.ready || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.send(type, body);
    return true;
  }

  /**
   * Sends one result chunk: as a binary frame (`chunk.data` and the bytes) to a control plane of
   * 1.3 or later (as this connection's `auth.ok` says), else as a `chunk` message with the bytes as
   * base64. False when there is no socket or it is not yet authenticated.
   */
  sendChunk(body: MessageBody<'chunk.data'>, payload: Buffer): boolean {
    if (!this.ready || this.ws?.readyState !== WebSocket.OPEN) return false;
    if (this.binaryChunks) {
      this.ws.send(encodeChunkFrame(createMessage('chunk.data', body), payload), { binary: true });
    } else {
      this.send('chunk', { ...body, payload: payload.toString('base64') });
    }
    return true;
  }

  private async heartbeat(): Promise<void> {
    if (this.ackDeadline && Date.now() > this.ackDeadline) {
      this.options.log.warn('no heartbeat ack: the link is dead, reconnecting');
      this.ws?.terminate();
      return;
    }
    let freeDiskBytes: number | null = null;
    try {
      const fs = await statfs(this.options.dataDir.path);
      freeDiskBytes = Number(fs.bavail) * Number(fs.bsize);
    } catch {
      freeDiskBytes = null;
    }
    this.send('heartbeat', {
      agentVersion: AGENT_VERSION,
      os: `${process.platform} ${process.arch}`,
      misKind: this.options.misKind,
      misVersion: this.options.misVersion(),
      freeDiskBytes,
      queueDepth: 0,
      lastError: this.lastError,
      supervised: this.options.supervised,
      credentialsReady: this.options.credentialsReady(),
      uptimeSeconds: Math.floor((Date.now() - this.startedAt) / 1000),
    });
  }

  private send<T extends MessageType>(type: T, body: MessageBody<T>, replyTo?: string): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(encodeMessage(createMessage(type, body, replyTo ? { replyTo } : {})));
  }
}
