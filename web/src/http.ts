import type { Envelope, ErrorBody } from './types';

/** A failure envelope (or a transport failure dressed as one), thrown by every call. */
export class ApiError extends Error {
  readonly code: string;
  readonly details: unknown;
  readonly status: number | null;

  constructor(error: ErrorBody, status: number | null = null) {
    super(error.message);
    this.name = 'ApiError';
    this.code = error.code;
    this.details = error.details;
    this.status = status;
  }

  static from(err: unknown): ApiError {
    if (err instanceof ApiError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new ApiError({ code: 'internal', message });
  }
}

function isEnvelope(value: unknown): value is Envelope<unknown> {
  return typeof value === 'object' && value !== null && 'ok' in value;
}

/**
 * POST a JSON body and return the answer envelope. Transport failures become
 * `network` errors; a non-envelope answer becomes `internal` (or `unavailable` for 5xx).
 */
export async function postEnvelope<T>(
  path: string,
  body: unknown,
  token?: string | null,
): Promise<{ envelope: Envelope<T>; status: number }> {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    Accept: 'application/json',
  };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body ?? {}) });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { envelope: { ok: false, error: { code: 'network', message } }, status: 0 };
  }
  let parsed: unknown = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null;
  }
  if (isEnvelope(parsed)) return { envelope: parsed as Envelope<T>, status: response.status };
  const code = response.status >= 500 ? 'unavailable' : 'internal';
  return {
    envelope: { ok: false, error: { code, message: `HTTP ${response.status}` } },
    status: response.status,
  };
}

/** Unwrap an envelope: the data, or an ApiError thrown. */
export function unwrap<T>(envelope: Envelope<T>, status: number | null = null): T {
  if (envelope.ok) return envelope.data;
  throw new ApiError(envelope.error, status);
}
