import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { verify } from '@keystage/crypto';
import {
  authSigningInput,
  createMessage,
  encodeMessage,
  errorReplyFor,
  isCompatibleVersion,
  MAX_FRAME_BYTES,
  type Message,
  type MessageBody,
  type MessageType,
  PROTOCOL_VERSION,
  parseChunkFrame,
  parseMessage,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@keystage/protocol';
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { PinoLogger } from 'nestjs-pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { AgentChannel, type JobInput } from './agent-channel.js';
import { AgentPresence, type GatewayCommand } from './agent-presence.js';
import { AgentsRepository, type HeartbeatUpdate } from './agents.repository.js';

export type { JobInput } from './agent-channel.js';

export const AGENT_PATH = '/agent';
const SERVER_VERSION = '0.1.0';
const MAX_ERRORS_PER_MINUTE = 10;
const HEARTBEAT_FLUSH_MS = 2_000;

interface Session {
  ws: WebSocket;
  state: 'hello' | 'challenge' | 'ready' | 'closed';
  agentId?: string;
  schoolId?: string;
  publicKey?: string;
  nonce?: string;
  protocolVersion?: string;
  sessionId?: string;
  lastSeen: number;
  errors: number[];
  authTimer?: NodeJS.Timeout;
  /** Frames of one agent are handled one after another, in the order they arrived. */
  inbox: Promise<void>;
  /** The run hand-over after connecting (stale pending jobs dropped); `work.pull` waits for it. */
  handover?: Promise<void>;
}

/** Events the rest of the control plane listens to (runs, ingest). */
export interface AgentMessageEvent {
  agentId: string;
  schoolId: string;
  message: Message;
  /** The chunk's bytes, for a `chunk.data` message (they come after it in its binary frame). */
  payload?: Buffer;
}

/** Replies to the agent that sent a message. */
export type AgentReply = <T extends MessageType>(type: T, body: MessageBody<T>) => void;

/**
 * Where the run lifecycle plugs in (the runs module registers itself): the gateway hands it every
 * job and result message and sends only the replies it asks for, after it has recorded them — so a
 * `run.ack` or `chunk.ack` always means "stored durably".
 */
export interface AgentMessageHandler {
  handle(event: AgentMessageEvent, reply: AgentReply): Promise<void>;
  connected(agentId: string, schoolId: string): Promise<void>;
}

/**
 * The agents' WebSocket endpoint (gateway role). Agents dial out to it; it authenticates them with a
 * challenge signed by their enrolled Ed25519 key, keeps one session per agent, buffers heartbeats into
 * batched database writes, delivers signed jobs (pushed while connected, pulled on connect from a
 * per-agent queue in Redis), and hands everything else the agents send to listeners. Malformed input
 * gets a typed `error` reply; a peer that keeps sending it is closed. Nothing an agent sends can crash
 * the gateway.
 */
@Injectable()
export class AgentGateway
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  readonly events = new EventEmitter();
  private wss: WebSocketServer | undefined;
  private readonly sessions = new Map<string, Session>();
  private readonly pendingHeartbeats = new Map<string, HeartbeatUpdate>();
  private timers: NodeJS.Timeout[] = [];
  private closing = false;
  private handler: AgentMessageHandler | undefined;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    this.upgrade(req, socket, head);

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly repo: AgentsRepository,
    private readonly presence: AgentPresence,
    private readonly channel: AgentChannel,
    private readonly logger: PinoLogger,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {
    logger.setContext(AgentGateway.name);
    this.events.setMaxListeners(50);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.adapterHost.httpAdapter.getHttpServer().on('upgrade', this.onUpgrade);
    await this.presence.listen((command) => this.onCommand(command));
    const interval = this.config.agents.heartbeatIntervalMs;
    this.timers.push(setInterval(() => void this.flushHeartbeats(), HEARTBEAT_FLUSH_MS).unref());
    this.timers.push(setInterval(() => this.sweep(), interval).unref());
  }

  /** Before the HTTP server closes: tell every agent we are going away (it reconnects elsewhere). */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    this.adapterHost.httpAdapter.getHttpServer().off('upgrade', this.onUpgrade);
    for (const session of this.sessions.values()) session.ws.close(1001, 'server going away');
    await this.flushHeartbeats();
  }

  async onApplicationShutdown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const session of this.sessions.values()) session.ws.terminate();
    this.sessions.clear();
    this.wss?.close();
  }

  /** Agents connected to this node. */
  connectedAgents(): string[] {
    return [...this.sessions.keys()];
  }

  /** Registers the run lifecycle (see {@link AgentMessageHandler}). */
  setMessageHandler(handler: AgentMessageHandler): void {
    this.handler = handler;
  }

  /** Signs and delivers a job (see {@link AgentChannel.offerJob}). */
  async offerJob(agentId: string, job: JobInput): Promise<void> {
    await this.channel.offerJob(agentId, job);
  }

  /** Sends a frame to an agent wherever its socket is; false when it is not connected anywhere. */
  async send(agentId: string, frame: string): Promise<boolean> {
    const local = this.sessions.get(agentId);
    if (local?.state === 'ready') {
      local.ws.send(frame);
      return true;
    }
    return this.channel.send(agentId, frame);
  }

  async cancelJob(agentId: string, runId: string, reason: string): Promise<void> {
    await this.channel.cancelJob(agentId, runId, reason);
  }

  // ─── Connection lifecycle ────────────────────────────────────────────────

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== AGENT_PATH || this.closing || !this.wss) {
      socket.write('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    socket.on('error', () => socket.destroy());
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  private accept(ws: WebSocket): void {
    const session: Session = {
      ws,
      state: 'hello',
      lastSeen: Date.now(),
      errors: [],
      inbox: Promise.resolve(),
    };
    session.authTimer = setTimeout(() => {
      if (session.state !== 'ready')
        this.refuse(session, 'auth.failed', 'authentication took too long', false);
    }, this.config.agents.authTimeoutMs);
    ws.on('message', (data, isBinary) => {
      session.inbox = session.inbox.then(() =>
        this.onFrame(session, data as Buffer, isBinary).catch((err: unknown) => {
          this.logger.error({ err, agentId: session.agentId }, 'agent message handling failed');
          this.reply(session, 'error', {
            code: 'internal.error',
            message: 'the control plane could not handle this message',
          });
        }),
      );
    });
    ws.on('error', (err) => {
      // ws reports oversized frames (1009) and protocol violations here, then closes the socket.
      this.logger.warn({ agentId: session.agentId, err: err.message }, 'agent socket error');
    });
    ws.on('close', () => this.onClose(session));
  }

  private onClose(session: Session): void {
    clearTimeout(session.authTimer);
    const wasReady = session.state === 'ready';
    session.state = 'closed';
    if (session.agentId && this.sessions.get(session.agentId) === session) {
      this.sessions.delete(session.agentId);
      void this.presence.markOffline(session.agentId).catch(() => undefined);
      if (wasReady) {
        this.logger.info({ agentId: session.agentId }, 'agent disconnected');
        this.events.emit('disconnected', { agentId: session.agentId, schoolId: session.schoolId });
      }
    }
  }

  private async onFrame(session: Session, data: Buffer, isBinary: boolean): Promise<void> {
    if (session.state === 'closed') return;
    session.lastSeen = Date.now();
    if (isBinary) return this.onBinaryFrame(session, data);
    const parsed = parseMessage(data);
    if (!parsed.ok) {
      if (parsed.error.code === 'protocol.version_unsupported' && session.state === 'hello') {
        this.refuse(
          session,
          'protocol.version_unsupported',
          `this control plane speaks protocol ${SUPPORTED_PROTOCOL_VERSIONS.min}–${SUPPORTED_PROTOCOL_VERSIONS.max}`,
          false,
        );
        return;
      }
      this.protocolError(session, errorReplyFor(parsed.error).body, parsed.error.details.messageId);
      return;
    }
    const message = parsed.message;
    switch (session.state) {
      case 'hello':
        if (message.type !== 'hello') return this.unexpected(session, message);
        return this.onHello(session, message);
      case 'challenge':
        if (message.type !== 'auth') return this.unexpected(session, message);
        return this.onAuth(session, message);
      case 'ready':
        return this.onReadyMessage(session, message);
    }
  }

  /** A binary frame: a result chunk (`chunk.data` and its bytes, since 1.3), once authenticated. */
  private async onBinaryFrame(session: Session, data: Buffer): Promise<void> {
    if (session.state !== 'ready') {
      this.protocolError(session, {
        code: 'protocol.malformed',
        message: 'a binary frame before the session is open',
      });
      return;
    }
    const parsed = parseChunkFrame(data);
    if (!parsed.ok) {
      this.protocolError(session, errorReplyFor(parsed.error).body, parsed.error.details.messageId);
      return;
    }
    await this.routeRunMessage(session, parsed.message, parsed.payload);
  }

  private async onHello(session: Session, message: Extract<Message, { type: 'hello' }>): Promise<void> {
    if (!isCompatibleVersion(message.protocolVersion, PROTOCOL_VERSION)) {
      this.refuse(
        session,
        'protocol.version_unsupported',
        `this control plane speaks protocol ${SUPPORTED_PROTOCOL_VERSIONS.min}–${SUPPORTED_PROTOCOL_VERSIONS.max}`,
        false,
      );
      return;
    }
    const agent = await this.repo.findById(message.body.agentId);
    if (!agent || agent.status === 'REPLACED') {
      this.refuse(session, 'agent.unknown', 'no such agent: enrol again with a new token', false);
      return;
    }
    if (agent.status === 'REVOKED') {
      this.refuse(
        session,
        'agent.revoked',
        `this agent was revoked${agent.revokedReason ? `: ${agent.revokedReason}` : ''}`,
        false,
      );
      return;
    }
    session.agentId = agent.id;
    session.schoolId = agent.schoolId;
    session.publicKey = agent.publicKey;
    session.protocolVersion = message.protocolVersion;
    session.nonce = randomBytes(32).toString('base64url');
    session.state = 'challenge';
    this.reply(session, 'challenge', { nonce: session.nonce }, message.id);
  }

  private async onAuth(session: Session, message: Extract<Message, { type: 'auth' }>): Promise<void> {
    const { agentId, signature } = message.body;
    const input = authSigningInput({
      nonce: session.nonce!,
      agentId,
      protocolVersion: session.protocolVersion!,
    });
    let valid = false;
    try {
      valid = agentId === session.agentId && verify(input, signature, session.publicKey!);
    } catch {
      valid = false;
    }
    if (!valid) {
      this.logger.warn({ agentId: session.agentId }, 'agent authentication failed');
      this.refuse(session, 'auth.failed', 'the challenge signature does not verify', false);
      return;
    }
    clearTimeout(session.authTimer);
    const previous = this.sessions.get(agentId);
    if (previous && previous !== session) {
      this.refuse(previous, 'session.replaced', 'another connection with this identity took over', false);
      this.sessions.delete(agentId);
    }
    session.state = 'ready';
    session.sessionId = randomUUID();
    this.sessions.set(agentId, session);
    await this.presence.markOnline(agentId, this.config.agents.heartbeatIntervalMs * 3);
    this.reply(
      session,
      'auth.ok',
      {
        agentId,
        sessionId: session.sessionId,
        heartbeatIntervalMs: this.config.agents.heartbeatIntervalMs,
        serverVersion: SERVER_VERSION,
      },
      message.id,
    );
    this.logger.info({ agentId, sessionId: session.sessionId }, 'agent connected');
    this.events.emit('connected', { agentId, schoolId: session.schoolId });
    if (this.handler) {
      session.handover = this.handler.connected(agentId, session.schoolId!).catch((err: unknown) => {
        this.logger.error({ err, agentId }, 'run hand-over after connect failed');
      });
    }
  }

  private async onReadyMessage(session: Session, message: Message): Promise<void> {
    const agentId = session.agentId!;
    switch (message.type) {
      case 'heartbeat': {
        const b = message.body;
        this.pendingHeartbeats.set(agentId, {
          agentId,
          at: new Date(),
          version: b.agentVersion,
          os: b.os,
          misKind: b.misKind,
          misVersion: b.misVersion,
          supervised: b.supervised,
          heartbeat: b as unknown as Record<string, unknown>,
        });
        // Hot path: built by hand, no schema pass (the ack has no fields).
        session.ws.send(
          `{"id":"${randomUUID()}","protocolVersion":"${PROTOCOL_VERSION}","type":"heartbeat.ack","replyTo":"${message.id}","sentAt":"${new Date().toISOString()}","body":{}}`,
        );
        // Presence is refreshed for the whole batch when heartbeats are flushed (one round trip).
        return;
      }
      case 'work.pull': {
        // After the hand-over, so jobs of runs that ended while the agent was away are gone.
        await session.handover;
        const pending = await this.channel.pending(agentId);
        for (const frame of pending.slice(0, message.body.maxJobs)) session.ws.send(frame);
        return;
      }
      case 'job.accept':
      case 'job.reject':
      case 'run.complete':
      case 'run.failed':
        if (message.type !== 'run.complete' && message.type !== 'run.failed') {
          await this.channel.forget(agentId, message.body.runId);
        }
        if (this.handler) {
          await this.handleRunMessage(session, message);
          return;
        }
        this.emitAgentMessage(session, message);
        if (message.type === 'run.complete' || message.type === 'run.failed') {
          this.reply(
            session,
            'run.ack',
            { runId: message.body.runId, outcome: message.type === 'run.complete' ? 'completed' : 'failed' },
            message.id,
          );
        }
        return;
      case 'chunk.data':
        // Its bytes come after it in a binary frame (onBinaryFrame); as text it has none.
        this.protocolError(
          session,
          { code: 'protocol.malformed', message: 'chunk.data comes only in a binary frame' },
          message.id,
        );
        return;
      case 'job.progress':
      case 'chunk':
      case 'chunk.reuse':
      case 'run.resume':
        return this.routeRunMessage(session, message);
      case 'error':
        this.logger.warn({ agentId, code: message.body.code }, 'agent reported a protocol error');
        return;
      default:
        return this.unexpected(session, message);
    }
  }

  /**
   * A message of a run's upload (with its bytes, for `chunk.data`): to the run lifecycle, else to
   * listeners, else `run.unknown`.
   */
  private async routeRunMessage(session: Session, message: Message, payload?: Buffer): Promise<void> {
    if (this.handler) {
      await this.handleRunMessage(session, message, payload);
      return;
    }
    if (this.events.listenerCount(message.type) === 0) {
      this.reply(
        session,
        'error',
        { code: 'run.unknown', message: 'no upload is open for this run' },
        message.id,
      );
      return;
    }
    this.emitAgentMessage(session, message, payload);
  }

  private async handleRunMessage(session: Session, message: Message, payload?: Buffer): Promise<void> {
    const event = this.eventOf(session, message, payload);
    await this.handler!.handle(event, (type, body) => this.reply(session, type, body, message.id));
    this.emit(event);
  }

  private emitAgentMessage(session: Session, message: Message, payload?: Buffer): void {
    this.emit(this.eventOf(session, message, payload));
  }

  private eventOf(session: Session, message: Message, payload?: Buffer): AgentMessageEvent {
    return {
      agentId: session.agentId!,
      schoolId: session.schoolId!,
      message,
      ...(payload ? { payload } : {}),
    };
  }

  private emit(event: AgentMessageEvent): void {
    this.events.emit(event.message.type, event);
    this.events.emit('message', event);
  }

  // ─── Replies and refusals ────────────────────────────────────────────────

  private reply<T extends MessageType>(
    session: Session,
    type: T,
    body: MessageBody<T>,
    replyTo?: string,
  ): void {
    if (session.ws.readyState !== session.ws.OPEN) return;
    session.ws.send(encodeMessage(createMessage(type, body, replyTo ? { replyTo } : {})));
  }

  private unexpected(session: Session, message: Message): void {
    this.protocolError(
      session,
      { code: 'protocol.unexpected', message: `${message.type} is not expected now` },
      message.id,
    );
  }

  private protocolError(session: Session, body: MessageBody<'error'>, replyTo?: string): void {
    const now = Date.now();
    session.errors = session.errors.filter((t) => now - t < 60_000);
    session.errors.push(now);
    this.reply(session, 'error', body, replyTo);
    if (session.errors.length > MAX_ERRORS_PER_MINUTE) {
      this.logger.warn(
        { agentId: session.agentId },
        'closing an agent connection that keeps sending invalid messages',
      );
      session.ws.close(1008, 'too many invalid messages');
    }
  }

  private refuse(
    session: Session,
    code: MessageBody<'refused'>['code'],
    message: string,
    retryable: boolean,
  ): void {
    const body: MessageBody<'refused'> =
      code === 'protocol.version_unsupported'
        ? { code, message, retryable, supported: { ...SUPPORTED_PROTOCOL_VERSIONS } }
        : { code, message, retryable };
    this.reply(session, 'refused', body);
    session.state = 'closed';
    session.ws.close(1008, code);
  }

  private onCommand(command: GatewayCommand): void {
    const session = this.sessions.get(command.agentId);
    if (!session) return;
    if (command.kind === 'disconnect') this.refuse(session, command.code, command.message, false);
    else if (session.state === 'ready') session.ws.send(command.frame);
  }

  private sweep(): void {
    const limit = Date.now() - this.config.agents.heartbeatIntervalMs * 3;
    for (const session of this.sessions.values()) {
      if (session.lastSeen < limit) {
        this.logger.info({ agentId: session.agentId }, 'dropping a silent agent session');
        session.ws.terminate();
      }
    }
  }

  private async flushHeartbeats(): Promise<void> {
    if (this.pendingHeartbeats.size === 0) return;
    const batch = [...this.pendingHeartbeats.values()];
    this.pendingHeartbeats.clear();
    const live = batch.map((b) => b.agentId).filter((id) => this.sessions.get(id)?.state === 'ready');
    let restored: string[] = [];
    try {
      const known = await this.presence.onlineSet(live);
      await this.presence.markManyOnline(live, this.config.agents.heartbeatIntervalMs * 3);
      restored = live.filter((id) => !known.has(id));
    } catch {
      // Redis is away: the next flush tries again.
    }
    // Presence lost while the socket stayed up (Redis restarted empty, the key expired): jobs offered
    // meanwhile found no route to this agent, so hand it its waiting runs again, as on a connect.
    for (const agentId of restored) {
      const session = this.sessions.get(agentId);
      if (session?.state !== 'ready' || !this.handler) continue;
      this.logger.info({ agentId }, 'agent presence restored');
      void this.handler.connected(agentId, session.schoolId!).catch((err: unknown) => {
        this.logger.error({ err, agentId }, 'run hand-over after presence was restored failed');
      });
    }
    try {
      await this.repo.saveHeartbeats(batch);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, count: batch.length }, 'could not save heartbeats');
    }
  }
}
