// Sign-in state: the token pair kept in localStorage (so a reload stays signed in), its
// refresh at ~80 % of the access token's life, and the hand-over between tabs of one browser.
import { ApiError, postEnvelope, unwrap } from './http';
import { Store } from './store';
import type { TokenPair, User } from './types';

const STORAGE_KEY = 'liaison.session';
const REFRESH_AT = 0.8;
const RETRY_MS = 10_000;

export interface Session {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  /** epoch ms when the access token expires, by this browser's clock */
  expires_at: number;
  user: User;
}

function isSession(value: unknown): value is Session {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Partial<Session>;
  return (
    typeof s.access_token === 'string' &&
    typeof s.refresh_token === 'string' &&
    typeof s.expires_at === 'number' &&
    typeof s.user === 'object' &&
    s.user !== null
  );
}

/** Whether localStorage works here, so that its emptiness means "signed out elsewhere". */
let storageWorks = false;

function load(): Session | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    storageWorks = true;
    const parsed: unknown = raw ? JSON.parse(raw) : null;
    return isSession(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

function save(value: Session | null): void {
  try {
    if (value) localStorage.setItem(STORAGE_KEY, JSON.stringify(value));
    else localStorage.removeItem(STORAGE_KEY);
    storageWorks = true;
  } catch {
    // Private mode or a full quota: the session still lives in memory for this tab.
  }
}

function toSession(pair: TokenPair): Session {
  const expiresIn = Number(pair.expires_in) || 900;
  return {
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    expires_in: expiresIn,
    expires_at: Date.now() + expiresIn * 1000,
    user: pair.user,
  };
}

/** The signed-in session, or null on the login page. */
export const session = new Store<Session | null>(load());

export function accessToken(): string | null {
  return session.get()?.access_token ?? null;
}

/** Bumped at every sign-in and sign-out, so a refresh that was under way then is discarded. */
let generation = 0;

function adopt(value: Session | null): void {
  save(value);
  session.set(value);
}

/** Forget the session in this tab and every other (their `storage` event follows). */
export function signOutLocally(): void {
  generation += 1;
  adopt(null);
}

export async function login(account: string, password: string): Promise<Session> {
  const { envelope, status } = await postEnvelope<TokenPair>('/api/v1/auth/login', {
    account,
    password,
  });
  const next = toSession(unwrap(envelope, status));
  generation += 1;
  adopt(next);
  return next;
}

// --- refresh ---------------------------------------------------------------------------

let inflight: Promise<Session> | null = null;

/**
 * Exchange the refresh token for a new pair. One refresh at a time per browser: refresh
 * tokens rotate and reusing a spent one revokes the session, so tabs take a lock and
 * re-read storage inside it, adopting a pair that another tab already obtained.
 */
export function refreshSession(): Promise<Session> {
  if (!inflight) {
    const spent = session.get()?.refresh_token ?? null;
    inflight = withRefreshLock(() => doRefresh(spent)).finally(() => {
      inflight = null;
    });
  }
  return inflight;
}

async function withRefreshLock<T>(work: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (!locks) return work();
  return locks.request('liaison.refresh', work);
}

async function doRefresh(spent: string | null): Promise<Session> {
  const stored = load();
  if (storageWorks && stored === null) {
    // Another tab signed out.
    signOutLocally();
    throw new ApiError({ code: 'unauthorized', message: 'signed out' }, 401);
  }
  if (stored && stored.refresh_token !== spent) {
    // Another tab refreshed meanwhile: its pair is ours too.
    session.set(stored);
    return stored;
  }
  if (!spent) throw new ApiError({ code: 'unauthorized', message: 'not signed in' }, 401);
  const started = generation;
  const { envelope, status } = await postEnvelope<TokenPair>('/api/v1/auth/refresh', {
    refresh_token: spent,
  });
  if (started !== generation) {
    // Signed out (or in as someone else) meanwhile: this pair must not bring the session back.
    throw new ApiError({ code: 'unauthorized', message: 'signed out meanwhile' }, 401);
  }
  if (!envelope.ok && envelope.error.code === 'unauthorized') signOutLocally();
  const next = toSession(unwrap(envelope, status));
  next.user = next.user ?? session.get()?.user;
  adopt(next);
  return next;
}

let refreshTimer: ReturnType<typeof setTimeout> | undefined;

function scheduleRefresh(value: Session | null): void {
  clearTimeout(refreshTimer);
  if (!value) return;
  // A little per-tab jitter so several tabs rarely race for the lock.
  const lifetime = value.expires_in * 1000;
  const dueAt = value.expires_at - lifetime * (1 - REFRESH_AT) + Math.random() * lifetime * 0.05;
  refreshTimer = setTimeout(runScheduledRefresh, Math.max(0, dueAt - Date.now()));
}

function runScheduledRefresh(): void {
  refreshSession().catch((err: unknown) => {
    const error = ApiError.from(err);
    if (error.code === 'unauthorized') return; // signed out already
    // The server may be restarting or the network gone: try again soon.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(runScheduledRefresh, RETRY_MS);
  });
}

session.subscribe(scheduleRefresh);
scheduleRefresh(session.get());

window.addEventListener('storage', (event) => {
  if (event.key !== STORAGE_KEY && event.key !== null) return;
  storageWorks = true;
  const value = load();
  // Signed out or in as someone else in another tab: a refresh under way here is void.
  if (value?.user.id !== session.get()?.user.id) generation += 1;
  session.set(value);
});

// --- logout ----------------------------------------------------------------------------

export async function logout(): Promise<void> {
  const current = session.get();
  if (!current) return;
  // From here on, nothing under way (a refresh, a reconnect) may revive the session.
  generation += 1;
  try {
    let { envelope } = await postEnvelope('/api/v1/auth/logout', {}, current.access_token);
    if (!envelope.ok && envelope.error.code === 'unauthorized') {
      // The access token may just have expired: revoke with a fresh one.
      const fresh = await refreshSession();
      ({ envelope } = await postEnvelope('/api/v1/auth/logout', {}, fresh.access_token));
    }
  } catch {
    // Signing out locally matters more than telling the server.
  } finally {
    signOutLocally();
  }
}
