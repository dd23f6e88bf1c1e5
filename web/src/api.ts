// The live link to the server: commands (socket when connected, HTTP otherwise), the event
// stream with its gapless durable sequence, resume, acknowledgements and the connection state.
import { io, type Socket } from 'socket.io-client';
import { accessToken, refreshSession, session, signOutLocally } from './auth';
import { ApiError, postEnvelope, unwrap } from './http';
import { Store } from './store';
import type { Envelope, ServerEvent, SyncMark } from './types';

const COMMAND_TIMEOUT_MS = 10_000;
const ACK_DEBOUNCE_MS = 200;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 15_000;

export type ConnectionState = 'connected' | 'reconnecting' | 'offline';

export interface ConnectionStatus {
  state: ConnectionState;
  /** reconnection attempts since the link was last up */
  attempt: number;
  /** whether this session was ever connected (connecting vs reconnecting) */
  wasConnected: boolean;
}

type EventHandler = (data: any, event: ServerEvent) => void;
type Hook = () => void;

/** The events of some types dispatched while a snapshot was in flight. */
interface Recorder {
  types: ReadonlySet<string>;
  events: ServerEvent[];
}

/** A fetched snapshot and the events (of the types asked for) applied while it was in flight. */
export interface Snapshot<T> {
  answer: T;
  /** in the order they were applied; lay them over the answer again */
  meanwhile: ServerEvent[];
}

/** The refusal code of a connect_error: `err.data.code` as the contract says. */
function errorCode(err: unknown): string | null {
  const data = (err as { data?: unknown } | null)?.data;
  if (typeof data === 'object' && data !== null && 'code' in data) {
    return String((data as { code: unknown }).code);
  }
  return null;
}

export class Connection {
  readonly status = new Store<ConnectionStatus>({
    state: 'reconnecting',
    attempt: 0,
    wasConnected: false,
  });

  private socket: Socket | null = null;
  /** last contiguous durable seq applied; memory only, so a reload starts afresh */
  private lastSeq: number | null = null;
  private lastAcked: number | null = null;
  /** durable events that arrived before the first sync.ready told us where we stand */
  private early: ServerEvent[] = [];
  /** set while we drop the link on purpose to have the server replay a gap */
  private recovering = false;
  /** connected, but the server has not yet said where the stream stands (sync.ready/reset) */
  private syncPending = false;
  private recorders = new Set<Recorder>();
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private handlers = new Map<string, Set<EventHandler>>();
  private connectHooks = new Set<Hook>();
  private resetHooks = new Set<Hook>();
  private cleanups: Hook[] = [];
  private renewedToken: string | null = null;
  private gapRecoveries: number[] = [];
  private wasConnected = false;
  /** connects we started ourselves since the link was last up (socket.io's own are not counted) */
  private manualRetries = 0;

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /** Open the socket; it reconnects by itself until stop(). */
  start(): void {
    if (this.socket) return;
    const socket = io({
      path: '/socket.io',
      transports: ['websocket'],
      autoConnect: false,
      reconnectionDelay: 1_000,
      reconnectionDelayMax: 5_000,
      // A function, so every (re)connect sends the current token and where we stand.
      auth: (cb) => {
        const auth: Record<string, unknown> = { token: accessToken() };
        if (this.lastSeq !== null) auth.last_seq = this.lastSeq;
        cb(auth);
      },
    });
    this.socket = socket;

    socket.on('connect', () => this.onConnect());
    socket.on('disconnect', (reason) => this.onDisconnect(reason));
    socket.on('connect_error', (err) => this.onConnectError(err));
    socket.on('event', (event: ServerEvent) => this.onEvent(event));
    socket.io.on('reconnect_attempt', (attempt) => {
      this.attempt = attempt;
      this.updateStatus();
    });
    socket.io.on('close', () => this.updateStatus());

    const online = () => this.onBrowserOnline();
    const offline = () => this.onBrowserOffline();
    window.addEventListener('online', online);
    window.addEventListener('offline', offline);
    const unsubscribe = session.subscribe((value) => this.onSessionChanged(value?.access_token));
    this.cleanups.push(
      () => window.removeEventListener('online', online),
      () => window.removeEventListener('offline', offline),
      unsubscribe,
    );

    this.renewedToken = accessToken();
    socket.connect();
    this.updateStatus();
  }

  stop(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.ackTimer);
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.socket?.removeAllListeners();
    this.socket?.io.removeAllListeners();
    this.socket?.disconnect();
    this.socket = null;
    this.lastSeq = null;
    this.early = [];
    this.syncPending = false;
    this.status.set({ state: 'offline', attempt: 0, wasConnected: this.wasConnected });
  }

  // --- subscriptions ------------------------------------------------------------------

  /** Handle pushes of one event type; returns the unsubscribe function. */
  on(type: string, handler: EventHandler): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /**
   * Run after every (re)connect, once the server has said where the stream stands (sync.ready
   * or sync.reset) and what it replayed has been applied: (re)load state and re-issue the
   * subscriptions, which are per connection, here. Not at the connect itself: a snapshot read
   * before the server fixed the seq it resumes from can miss an event committed in between,
   * which the server then never pushes (it only pushes what comes after that seq).
   */
  onConnected(hook: Hook): () => void {
    this.connectHooks.add(hook);
    return () => this.connectHooks.delete(hook);
  }

  /**
   * Run when events were missed that cannot be replayed (sync.reset, or a sync.ready ahead of
   * what was replayed), just before the connected hooks reload: forget what may be stale.
   */
  onReset(hook: Hook): () => void {
    this.resetHooks.add(hook);
    return () => this.resetHooks.delete(hook);
  }

  // --- commands -----------------------------------------------------------------------

  /** Run a command: over the socket when connected, else over HTTP. Throws ApiError. */
  async command<T = Record<string, unknown>>(name: string, payload: object = {}): Promise<T> {
    const socket = this.socket;
    if (socket?.connected) {
      let envelope: Envelope<T>;
      try {
        envelope = await socket.timeout(COMMAND_TIMEOUT_MS).emitWithAck(name, payload);
      } catch {
        throw new ApiError({ code: 'timeout', message: `${name}: no answer` });
      }
      return unwrap(envelope);
    }
    return this.commandOverHttp<T>(name, payload);
  }

  /**
   * Fetch a snapshot of state that events of `types` also change, with the events of those
   * types applied while it was in flight. The answer may have been read before some of them
   * were committed: the caller lays them over it again (in order), so what it shows follows
   * the event sequence, not the order in which answers happen to arrive.
   */
  async snapshot<T = Record<string, unknown>>(
    name: string,
    payload: object,
    types: readonly string[],
  ): Promise<Snapshot<T>> {
    const recorder: Recorder = { types: new Set(types), events: [] };
    this.recorders.add(recorder);
    try {
      const answer = await this.command<T>(name, payload);
      return { answer, meanwhile: recorder.events };
    } finally {
      this.recorders.delete(recorder);
    }
  }

  /** Fire a command that only means something on the live socket (acks, idle reports). */
  signal(name: string, payload: object): void {
    if (this.socket?.connected) this.socket.emit(name, payload);
  }

  private async commandOverHttp<T>(name: string, payload: object): Promise<T> {
    const path = `/api/v1/commands/${encodeURIComponent(name)}`;
    let { envelope, status } = await postEnvelope<T>(path, payload, accessToken());
    if (!envelope.ok && envelope.error.code === 'unauthorized' && status === 401) {
      await refreshSession();
      ({ envelope, status } = await postEnvelope<T>(path, payload, accessToken()));
    }
    return unwrap(envelope, status);
  }

  // --- the event stream ---------------------------------------------------------------

  private onEvent(event: ServerEvent): void {
    if (this.recovering || typeof event !== 'object' || event === null) return;
    if (event.type === 'sync.ready') return this.onSyncReady(event.data as unknown as SyncMark);
    if (event.type === 'sync.reset') return this.onSyncReset(event.data as unknown as SyncMark);
    if (event.seq === null || event.seq === undefined) return this.dispatch(event);
    if (this.lastSeq === null) {
      this.early.push(event);
      return;
    }
    this.applyDurable(event);
  }

  private applyDurable(event: ServerEvent): void {
    const seq = event.seq as number;
    const last = this.lastSeq as number;
    if (seq <= last) return; // already seen (replay overlap, another path)
    if (seq > last + 1) return this.recoverGap();
    this.lastSeq = seq;
    this.dispatch(event);
    this.scheduleAck();
  }

  private onSyncReady({ seq }: SyncMark): void {
    let reset = false;
    if (this.lastSeq === null) {
      this.lastSeq = seq;
    } else if (seq > this.lastSeq) {
      // The server stands further than what it replayed: take its word and refetch.
      this.lastSeq = seq;
      reset = true;
    }
    this.flushEarly();
    this.synced(reset);
  }

  private onSyncReset({ seq }: SyncMark): void {
    this.lastSeq = seq;
    this.early = [];
    this.synced(true);
  }

  /** The stream is in step: now (and not at the connect) the models may take their snapshots. */
  private synced(reset: boolean): void {
    if (this.recovering) return; // a gap: we reconnect and sync again
    const first = this.syncPending;
    this.syncPending = false;
    if (reset) this.runHooks(this.resetHooks);
    if (first || reset) this.runHooks(this.connectHooks);
  }

  private flushEarly(): void {
    const early = this.early.sort((a, b) => (a.seq as number) - (b.seq as number));
    this.early = [];
    for (const event of early) {
      if (this.recovering) return;
      this.applyDurable(event);
    }
  }

  /** A durable event is missing: reconnect with the last contiguous seq to have it replayed. */
  private recoverGap(): void {
    const socket = this.socket;
    if (!socket || this.recovering) return;
    this.recovering = true;
    // Back off if gaps keep coming, so a misbehaving stream cannot make us spin.
    const now = Date.now();
    this.gapRecoveries = this.gapRecoveries.filter((t) => now - t < 30_000);
    this.gapRecoveries.push(now);
    const delay = Math.min(RETRY_MAX_MS, 250 * 2 ** (this.gapRecoveries.length - 1));
    socket.disconnect();
    this.scheduleManualConnect(false, delay);
  }

  private dispatch(event: ServerEvent): void {
    for (const recorder of this.recorders) {
      if (recorder.types.has(event.type)) recorder.events.push(event);
    }
    const handlers = this.handlers.get(event.type);
    if (!handlers) return;
    for (const handler of [...handlers]) {
      try {
        handler(event.data ?? {}, event);
      } catch (err) {
        console.error(`handler for ${event.type} failed`, err);
      }
    }
  }

  private scheduleAck(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = setTimeout(() => {
      if (this.lastSeq === null || this.lastSeq === 0 || this.lastSeq === this.lastAcked) return;
      if (!this.socket?.connected) return;
      this.lastAcked = this.lastSeq;
      this.signal('sync.ack', { seq: this.lastSeq });
    }, ACK_DEBOUNCE_MS);
  }

  // --- connection lifecycle -----------------------------------------------------------

  private onConnect(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.recovering = false;
    this.attempt = 0;
    this.manualRetries = 0;
    this.wasConnected = true;
    this.lastAcked = null;
    this.renewedToken = accessToken();
    this.syncPending = true;
    this.updateStatus();
    this.scheduleAck();
  }

  private onDisconnect(reason: Socket.DisconnectReason): void {
    // The server dropped us on purpose (token expired, session revoked): try again; a
    // revoked session is then refused with `unauthorized` and we go back to the login.
    if (reason === 'io server disconnect') this.scheduleManualConnect(true);
    this.updateStatus();
  }

  private onConnectError(err: Error): void {
    const code = errorCode(err);
    if (code === 'unauthorized') {
      signOutLocally();
      return;
    }
    if (code === 'token_expired') {
      this.scheduleManualConnect(true);
    } else if (!this.socket?.active) {
      // Refused by the server for another reason (e.g. too many connections): socket.io
      // will not retry by itself, so we do, backing off.
      this.scheduleManualConnect(false);
    }
    this.updateStatus();
  }

  /** Connect again after a backoff, refreshing the token first when asked to. */
  private scheduleManualConnect(refreshFirst = false, delayMs?: number): void {
    if (this.retryTimer !== undefined) return;
    // The first manual retry goes at once; repeated ones (a refusal that keeps coming) back off.
    const backoff = this.manualRetries === 0 ? 0 : RETRY_BASE_MS * 2 ** (this.manualRetries - 1);
    const delay = delayMs ?? Math.min(RETRY_MAX_MS, backoff);
    this.manualRetries += 1;
    this.attempt += 1;
    this.retryTimer = setTimeout(async () => {
      if (refreshFirst) {
        try {
          await refreshSession();
        } catch (err) {
          if (ApiError.from(err).code === 'unauthorized') return; // back to the login
        }
      }
      this.retryTimer = undefined;
      if (this.socket && !this.socket.connected) this.socket.connect();
      this.updateStatus();
    }, delay);
    this.updateStatus();
  }

  private onSessionChanged(token: string | undefined): void {
    if (!token || token === this.renewedToken) return;
    this.renewedToken = token;
    if (!this.socket?.connected) return;
    this.command('auth.renew', { token }).catch((err: unknown) => {
      console.warn('auth.renew failed', err);
    });
  }

  private onBrowserOffline(): void {
    // Do not wait for the heartbeat to notice: drop the link and let reconnection run.
    this.socket?.io.engine?.close();
    this.updateStatus();
  }

  private onBrowserOnline(): void {
    const socket = this.socket;
    if (socket && !socket.connected) {
      // Skip the remaining backoff.
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      socket.disconnect();
      socket.connect();
    }
    this.updateStatus();
  }

  private updateStatus(): void {
    const socket = this.socket;
    let state: ConnectionState;
    if (socket?.connected) state = 'connected';
    else if (!navigator.onLine) state = 'offline';
    else if (socket && (socket.active || this.retryTimer !== undefined)) state = 'reconnecting';
    else state = 'offline';
    const attempt = state === 'connected' ? 0 : this.attempt;
    const current = this.status.get();
    if (
      current.state !== state ||
      current.attempt !== attempt ||
      current.wasConnected !== this.wasConnected
    ) {
      this.status.set({ state, attempt, wasConnected: this.wasConnected });
    }
  }

  private runHooks(hooks: Set<Hook>): void {
    for (const hook of [...hooks]) {
      try {
        hook();
      } catch (err) {
        console.error('hook failed', err);
      }
    }
  }
}
