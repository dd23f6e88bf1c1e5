// Attachments: upload (multipart, with progress) and download (the bytes need the Bearer
// token, so a plain link cannot fetch them: fetch → blob → a temporary object URL); the same
// download for other token-guarded files (meeting minutes as Markdown).
import { accessToken, refreshSession } from './auth';
import { ApiError, unwrap } from './http';
import type { Envelope, FileInfo } from './types';

const UPLOAD_PATH = '/api/v1/files';

function uploadOnce(
  file: File,
  onProgress: (loaded: number, total: number) => void,
  signal?: AbortSignal,
): Promise<{ envelope: Envelope<FileInfo>; status: number }> {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const fail = (code: string, message: string, status = 0) =>
      resolve({ envelope: { ok: false, error: { code, message } }, status });
    xhr.open('POST', UPLOAD_PATH);
    const token = accessToken();
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => fail('network', 'upload failed');
    xhr.onabort = () => fail('aborted', 'upload cancelled');
    xhr.onload = () => {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(xhr.responseText);
      } catch {
        parsed = null;
      }
      if (typeof parsed === 'object' && parsed !== null && 'ok' in parsed) {
        resolve({ envelope: parsed as Envelope<FileInfo>, status: xhr.status });
      } else if (xhr.status === 413) {
        fail('too_large', `HTTP ${xhr.status}`, xhr.status);
      } else {
        fail(xhr.status >= 500 ? 'unavailable' : 'internal', `HTTP ${xhr.status}`, xhr.status);
      }
    };
    signal?.addEventListener('abort', () => xhr.abort());
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

/** Upload one file; retries once with a fresh token after a 401. Throws ApiError. */
export async function uploadFile(
  file: File,
  onProgress: (loaded: number, total: number) => void,
  signal?: AbortSignal,
): Promise<FileInfo> {
  let { envelope, status } = await uploadOnce(file, onProgress, signal);
  if (!envelope.ok && status === 401) {
    await refreshSession();
    ({ envelope, status } = await uploadOnce(file, onProgress, signal));
  }
  return unwrap(envelope, status);
}

/** GET with the Bearer token (once more with a fresh one after a 401). Throws ApiError. */
async function fetchWithToken(path: string): Promise<Response> {
  const get = () => fetch(path, { headers: { Authorization: `Bearer ${accessToken() ?? ''}` } });
  let response: Response;
  try {
    response = await get();
    if (response.status === 401) {
      await refreshSession();
      response = await get();
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError({ code: 'network', message: String(err) });
  }
  if (!response.ok) {
    let error = { code: response.status === 404 ? 'not_found' : 'unknown', message: `HTTP ${response.status}` };
    try {
      const body = await response.json();
      if (body?.error?.code) error = body.error;
    } catch {
      // not an envelope
    }
    throw new ApiError(error, response.status);
  }
  return response;
}

/** Fetch what `path` serves with the token and hand it to the browser as a download. */
export async function downloadFrom(path: string, name: string): Promise<void> {
  const blob = await (await fetchWithToken(path)).blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** An attachment's bytes, as a download. */
export function downloadFile(file: FileInfo): Promise<void> {
  return downloadFrom(`${UPLOAD_PATH}/${encodeURIComponent(file.file_id)}`, file.name || file.file_id);
}

/** "12 KB", "3.4 MB" */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
