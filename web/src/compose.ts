// Pieces shared by the panels that send things to people (pager, circulation, meetings): the
// recipient picker (people and whole departments, or people only), attachment upload with
// progress, the download list, and the idempotency key. Test ids are built from a prefix
// (`pager-…`, `circ-…`, `meet-…`).
import { useEffect, useRef, useState } from 'preact/hooks';
import { departmentTree } from './board';
import { ErrorNote } from './components';
import { downloadFile, formatSize, uploadFile } from './files';
import { ApiError } from './http';
import { html } from './html';
import { t } from './i18n';
import { useStore, type Store } from './store';
import type { Department, DirectoryUser, FileInfo, Id } from './types';

/** Someone or a whole department on the "to" line. */
export interface Recipient {
  kind: 'user' | 'dept';
  id: Id;
  name: string;
}

/** Where the picker finds people and departments (the pager model provides it). */
export interface PeopleSource {
  readonly departments: Store<Department[]>;
  findUsers(query: string): Promise<DirectoryUser[]>;
  departmentName(id: Id | null): string;
}

/** A fresh idempotency key; crypto.randomUUID needs a secure context, so fall back. */
export function newClientMsgId(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Enter that an input method is still composing (pinyin) must not act. */
export const composing = (e: KeyboardEvent) => e.isComposing || e.keyCode === 229;

const input = (e: Event) => (e.currentTarget as HTMLInputElement).value;

/** Split the chosen recipients into the `to` and `departments` of a command. */
export function recipientIds(recipients: Recipient[]): { to: Id[]; departments: Id[] } {
  return {
    to: recipients.filter((r) => r.kind === 'user').map((r) => r.id),
    departments: recipients.filter((r) => r.kind === 'dept').map((r) => r.id),
  };
}

// --- the recipient picker ---------------------------------------------------------------------

export function RecipientPicker(props: {
  source: PeopleSource;
  chosen: Recipient[];
  onChange: (r: Recipient[]) => void;
  /** test-id prefix: `pager`, `circ`, `meet` */
  prefix: string;
  label?: string;
  /** people only: no department options, no department select (meeting participants) */
  peopleOnly?: boolean;
}) {
  const { source, chosen, onChange, prefix } = props;
  const withDepartments = !props.peopleOnly;
  const departments = useStore(source.departments);
  const [query, setQuery] = useState('');
  const [users, setUsers] = useState<DirectoryUser[]>([]);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const [error, setError] = useState<ApiError | null>(null);
  const request = useRef(0);

  useEffect(() => {
    const q = query.trim();
    if (!q) {
      setUsers([]);
      return undefined;
    }
    const mine = ++request.current;
    const timer = setTimeout(async () => {
      try {
        const found = await source.findUsers(q);
        if (mine === request.current) {
          setUsers(found);
          setError(null);
        }
      } catch (err) {
        if (mine === request.current) setError(ApiError.from(err));
      }
    }, 200);
    return () => clearTimeout(timer);
  }, [query]);

  const has = (kind: Recipient['kind'], id: Id) => chosen.some((r) => r.kind === kind && r.id === id);
  const needle = query.trim().toLowerCase();
  const deptMatches = needle && withDepartments
    ? departments.filter((d) => d.name.toLowerCase().includes(needle) && !has('dept', d.id)).slice(0, 5)
    : [];
  const options: Recipient[] = [
    ...users.filter((u) => !has('user', u.id)).map((u): Recipient => ({ kind: 'user', id: u.id, name: u.name })),
    ...deptMatches.map((d): Recipient => ({ kind: 'dept', id: d.id, name: d.name })),
  ];
  const shown = open && needle !== '' && (options.length > 0 || error !== null);

  const add = (r: Recipient) => {
    if (!has(r.kind, r.id)) onChange([...chosen, r]);
    setQuery('');
    setUsers([]);
    setActive(0);
  };
  const remove = (r: Recipient) => onChange(chosen.filter((c) => !(c.kind === r.kind && c.id === r.id)));

  const onKey = (e: KeyboardEvent) => {
    if (composing(e)) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const n = options.length || 1;
      setActive((i) => (i + (e.key === 'ArrowDown' ? 1 : n - 1)) % n);
    } else if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey) {
      e.preventDefault(); // never submit the form from the "to" line
      if (shown && options[active]) add(options[active]);
    } else if (e.key === 'Escape') {
      setOpen(false);
    } else if (e.key === 'Backspace' && query === '' && chosen.length > 0) {
      remove(chosen[chosen.length - 1]);
    }
  };

  const user = (id: Id) => users.find((u) => u.id === id);
  return html`<div class="field">
    <span class="field-label">${props.label ?? t('pager.to')}</span>
    <div class="pager-to">
      ${chosen.map(
        (r) => html`<span
          key=${`${r.kind}-${r.id}`}
          class=${`pager-chip${r.kind === 'dept' ? ' dept' : ''}`}
          data-testid=${r.kind === 'dept' ? `${prefix}-chip-dept-${r.id}` : `${prefix}-chip-${r.id}`}
        >
          ${r.kind === 'dept' ? html`<span aria-hidden="true">🏢</span>` : null}${r.name}
          <button type="button" class="pager-chip-x" title=${t('pager.remove')} onClick=${() => remove(r)}>×</button>
        </span>`,
      )}
      <input
        type="text"
        class="pager-to-input"
        data-testid=${`${prefix}-to-input`}
        role="combobox"
        aria-expanded=${shown}
        autocomplete="off"
        placeholder=${chosen.length ? '' : t(withDepartments ? 'pager.to_placeholder' : 'pager.to_placeholder_people')}
        value=${query}
        onInput=${(e: Event) => {
          setQuery(input(e));
          setOpen(true);
          setActive(0);
        }}
        onKeyDown=${onKey}
        onFocus=${() => setOpen(true)}
        onBlur=${() => setTimeout(() => setOpen(false), 150)}
      />
      ${shown
        ? html`<ul class="pager-options" role="listbox">
            ${options.map((o, i) => {
              const u = o.kind === 'user' ? user(o.id) : undefined;
              return html`<li
                key=${`${o.kind}-${o.id}`}
                role="option"
                aria-selected=${i === active}
                class=${`pager-option${i === active ? ' active' : ''}`}
                data-testid=${o.kind === 'dept' ? `${prefix}-to-dept-option-${o.id}` : `${prefix}-to-option-${o.id}`}
                onMouseDown=${(e: Event) => {
                  e.preventDefault();
                  add(o);
                }}
              >
                ${o.kind === 'dept'
                  ? html`<span class="pager-option-name">🏢 ${o.name}</span>
                      <span class="muted">${t('pager.whole_department')}</span>`
                  : html`<span class="pager-option-name">${o.name}</span>
                      <span class="muted">
                        ${[u?.title, source.departmentName(u?.department_id ?? null)].filter(Boolean).join(' · ')}
                      </span>`}
              </li>`;
            })}
            ${error ? html`<li class="pager-option muted">${t('pager.lookup_failed')}</li>` : null}
          </ul>`
        : null}
    </div>
    ${withDepartments ? html`<select
      class="pager-dept-select"
      data-testid=${`${prefix}-dept-select`}
      value=""
      onChange=${(e: Event) => {
        const select = e.currentTarget as HTMLSelectElement;
        const dept = departments.find((d) => d.id === select.value);
        if (dept) add({ kind: 'dept', id: dept.id, name: dept.name });
        select.value = '';
      }}
    >
      <option value="">${t('pager.add_department')}</option>
      ${departmentTree(departments).map(
        (o) => html`<option key=${o.id} value=${o.id} disabled=${has('dept', o.id)}>
          ${'\u3000'.repeat(o.depth)}${o.label}
        </option>`,
      )}
    </select>` : null}
  </div>`;
}

// --- attachments: upload ----------------------------------------------------------------------

export interface Upload {
  key: number;
  name: string;
  size: number;
  loaded: number;
  info: FileInfo | null;
  error: ApiError | null;
  abort: AbortController;
}

let uploadKey = 0;

export interface Uploads {
  list: Upload[];
  attach(files: FileList | null): void;
  remove(u: Upload): void;
  clear(): void;
  /** still under way */
  uploading: boolean;
  failed: boolean;
  /** what finished, to send as `attachments` */
  files: FileInfo[];
}

/** Attachments of a form being written: each file uploads at once, with progress. */
export function useUploads(): Uploads {
  const [list, setList] = useState<Upload[]>([]);
  const patch = (key: number, change: Partial<Upload>) =>
    setList((all) => all.map((u) => (u.key === key ? { ...u, ...change } : u)));
  return {
    list,
    attach(files) {
      for (const file of Array.from(files ?? [])) {
        const item: Upload = {
          key: ++uploadKey,
          name: file.name,
          size: file.size,
          loaded: 0,
          info: null,
          error: null,
          abort: new AbortController(),
        };
        setList((all) => [...all, item]);
        uploadFile(file, (loaded) => patch(item.key, { loaded }), item.abort.signal)
          .then((info) => patch(item.key, { info, loaded: file.size }))
          .catch((err: unknown) => patch(item.key, { error: ApiError.from(err) }));
      }
    },
    remove(u) {
      u.abort.abort();
      setList((all) => all.filter((x) => x.key !== u.key));
    },
    clear() {
      setList([]);
    },
    uploading: list.some((u) => !u.info && !u.error),
    failed: list.some((u) => u.error),
    files: list.flatMap((u) => (u.info ? [u.info] : [])),
  };
}

/** Why a form with these uploads cannot be sent yet, or null. */
export function uploadProblem(uploads: Uploads): string | null {
  if (uploads.uploading) return t('pager.wait_uploads');
  if (uploads.failed) return t('pager.failed_uploads');
  return null;
}

export function UploadList({ uploads, prefix }: { uploads: Uploads; prefix: string }) {
  if (uploads.list.length === 0) return null;
  return html`<ul class="pager-uploads">
    ${uploads.list.map(
      (u) => html`<li key=${u.key} class=${`pager-upload${u.error ? ' failed' : ''}`} data-testid=${`${prefix}-upload`}>
        <span class="pager-upload-name">📎 ${u.name}</span>
        <span class="muted">${formatSize(u.size)}</span>
        ${u.error
          ? html`<span class="pager-upload-error">
              ${u.error.code === 'too_large' ? t('pager.file_too_large') : t('pager.upload_failed')}
            </span>`
          : u.info
            ? html`<span class="pager-upload-done">✓</span>`
            : html`<progress max=${u.size || 1} value=${u.loaded}></progress>`}
        <button type="button" class="pager-chip-x" title=${t('pager.remove')} onClick=${() => uploads.remove(u)}>×</button>
      </li>`,
    )}
  </ul>`;
}

/** The "attach" button and its hidden file input (`<prefix>-attach`). */
export function AttachButton({ uploads, prefix }: { uploads: Uploads; prefix: string }) {
  const fileInput = useRef<HTMLInputElement>(null);
  return html`<button type="button" class="btn btn-small btn-ghost" onClick=${() => fileInput.current?.click()}>
      📎 ${t('pager.attach')}
    </button>
    <input
      ref=${fileInput}
      type="file"
      multiple
      hidden
      data-testid=${`${prefix}-attach`}
      onChange=${(e: Event) => {
        const el = e.currentTarget as HTMLInputElement;
        uploads.attach(el.files);
        el.value = '';
      }}
    />`;
}

// --- attachments: download --------------------------------------------------------------------

/** Attachments as buttons that fetch the bytes with the token (`<prefix>-file-<file_id>`). */
export function FileLinks({ files, prefix }: { files: FileInfo[] | undefined; prefix: string }) {
  const [error, setError] = useState<ApiError | null>(null);
  if (!files || files.length === 0) return null;
  const get = async (file: FileInfo) => {
    setError(null);
    try {
      await downloadFile(file);
    } catch (err) {
      setError(ApiError.from(err));
    }
  };
  return html`<div class="pager-files">
    ${files.map(
      (f) => html`<button
        key=${f.file_id}
        type="button"
        class="pager-file"
        data-testid=${`${prefix}-file-${f.file_id}`}
        title=${t('pager.download')}
        onClick=${(e: Event) => {
          e.stopPropagation();
          void get(f);
        }}
      >
        📎 ${f.name || f.file_id} <span class="muted">${formatSize(f.size)}</span>
      </button>`,
    )}
    <${ErrorNote} error=${error} />
  </div>`;
}
