// The library panel (文件库): breadcrumbs, the open folder's subfolders and documents, a new
// folder, upload into the folder (with "indexing…" until the text is searchable), download,
// move (a small folder browser) and remove, the permissions dialog for those who manage the
// folder, and search with highlighted snippets that link to the hit's folder.
import { useEffect, useRef, useState } from 'preact/hooks';
import { departmentTree } from './board';
import { ErrorNote, Icon } from './components';
import type { Recipient } from './compose';
import type { AppContext } from './context';
import { downloadFile, formatSize } from './files';
import { ApiError } from './http';
import { html } from './html';
import { formatDayTime, formatFull, hasKey, t } from './i18n';
import {
  PERMS,
  snippetParts,
  type Acl,
  type AclEntry,
  type Folder,
  type LibDoc,
  type LibraryModel,
  type Perm,
} from './library';
import { PersonPicker } from './picker';
import { useStore } from './store';
import { toast } from './toast';
import type { Id } from './types';

/** The roles a permission entry may name (server/auth.py ROLES). */
export const ROLES = ['staff', 'leader', 'admin', 'document_officer', 'archivist', 'finance', 'vehicle_admin'];

export function roleLabel(role: string): string {
  const key = `role.${role}`;
  return hasKey(key) ? t(key) : role;
}

export function permLabel(p: Perm): string {
  return t(({ read: 'lib.perm.read', write: 'lib.perm.write', manage: 'lib.perm.manage' } as const)[p]);
}

function permHint(p: Perm): string {
  return t(({ read: 'lib.perm.read_hint', write: 'lib.perm.write_hint', manage: 'lib.perm.manage_hint' } as const)[p]);
}

const inputValue = (e: Event) => (e.currentTarget as HTMLInputElement).value;

type Item = { kind: 'doc'; doc: LibDoc } | { kind: 'folder'; folder: Folder };
const itemRef = (item: Item) => (item.kind === 'doc' ? { doc_id: item.doc.doc_id } : { folder_id: item.folder.folder_id });
const itemName = (item: Item) => (item.kind === 'doc' ? item.doc.title : item.folder.name);

// --- breadcrumbs and toolbar -----------------------------------------------------------------

function Crumbs({ lib }: { lib: LibraryModel }) {
  const path = useStore(lib.path);
  return html`<nav class="lib-crumbs" aria-label=${t('lib.path')} data-testid="lib-crumbs">
    <button type="button" class="lib-crumb" data-testid="lib-crumb-top" onClick=${() => void lib.open(null)}><${Icon} name="home" /> ${t('lib.top')}</button>
    ${path.map(
      (c, i) => html`<span key=${c.folder_id} class="lib-crumb-sep" aria-hidden="true">›</span>
        <button
          type="button"
          class=${`lib-crumb${i === path.length - 1 ? ' current' : ''}`}
          data-testid=${`lib-crumb-${c.folder_id}`}
          aria-current=${i === path.length - 1 ? 'location' : undefined}
          onClick=${() => void lib.open(c.folder_id)}
        >
          ${c.name}
        </button>`,
    )}
  </nav>`;
}

function NewFolder({ lib, onDone }: { lib: LibraryModel; onDone: () => void }) {
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    setError(null);
    try {
      await lib.createFolder(name.trim());
      toast(t('lib.folder_created', { name: name.trim() }), 'success');
      onDone();
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="lib-inline-form" data-testid="lib-folder-form" onSubmit=${submit}>
    <input type="text" maxlength="100" placeholder=${t('lib.folder_name')} value=${name} data-testid="lib-folder-name" onInput=${(e: Event) => setName(inputValue(e))} />
    <button type="submit" class="btn btn-small btn-primary" disabled=${busy || !name.trim()} data-testid="lib-folder-create">${t('lib.create')}</button>
    <button type="button" class="btn btn-small btn-ghost" onClick=${onDone}>${t('common.cancel')}</button>
    <${ErrorNote} error=${error} testid="lib-folder-error" />
  </form>`;
}

interface Uploading {
  key: number;
  name: string;
  size: number;
  loaded: number;
  error: ApiError | null;
}
let uploadKey = 0;

function UploadButton({ lib, onChange }: { lib: LibraryModel; onChange: (u: Uploading[]) => void }) {
  const input = useRef<HTMLInputElement>(null);
  const list = useRef<Uploading[]>([]);
  const patch = (key: number, change: Partial<Uploading> | null) => {
    list.current = change === null ? list.current.filter((u) => u.key !== key) : list.current.map((u) => (u.key === key ? { ...u, ...change } : u));
    onChange(list.current);
  };
  const start = (files: FileList | null) => {
    for (const file of Array.from(files ?? [])) {
      const key = ++uploadKey;
      list.current = [...list.current, { key, name: file.name, size: file.size, loaded: 0, error: null }];
      onChange(list.current);
      lib
        .upload(file, null, (loaded) => patch(key, { loaded }))
        .then(() => patch(key, null))
        .catch((err: unknown) => patch(key, { error: ApiError.from(err) }));
    }
  };
  return html`<button type="button" class="btn btn-small btn-primary" data-testid="lib-upload-button" onClick=${() => input.current?.click()}>
      ⇪ ${t('lib.upload')}
    </button>
    <input
      ref=${input}
      type="file"
      multiple
      hidden
      data-testid="lib-upload"
      onChange=${(e: Event) => {
        const el = e.currentTarget as HTMLInputElement;
        start(el.files);
        el.value = '';
      }}
    />`;
}

// --- the listing -----------------------------------------------------------------------------

function DocRow(props: { ctx: AppContext; doc: LibDoc; canWrite: boolean; indexing: boolean; highlighted: boolean; onMove: () => void }) {
  const { ctx, doc, canWrite, indexing, onMove } = props;
  const lib = ctx.library;
  const [error, setError] = useState<ApiError | null>(null);
  const run = async (action: () => Promise<void>) => {
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(ApiError.from(err));
    }
  };
  return html`<tr class=${`lib-row${props.highlighted ? ' lib-row-hit' : ''}`} data-testid=${`lib-doc-${doc.doc_id}`} data-indexing=${indexing ? 'true' : 'false'}>
    <td class="lib-name">
      <${Icon} name="file" />
      <span class="lib-title">${doc.title}</span>
      ${indexing ? html`<span class="lib-indexing" data-testid=${`lib-indexing-${doc.doc_id}`} title=${t('lib.indexing_hint')}>${t('lib.indexing')}</span>` : null}
      ${doc.file.name && doc.file.name !== doc.title ? html`<div class="muted small">${doc.file.name}</div>` : null}
      <${ErrorNote} error=${error} />
    </td>
    <td class="muted small">${formatSize(doc.file.size)}</td>
    <td class="muted small">${doc.added_at ? html`<time datetime=${doc.added_at} title=${formatFull(doc.added_at)}>${formatDayTime(doc.added_at)}</time>` : ''}</td>
    <td class="lib-actions">
      <button type="button" class="btn btn-small btn-ghost" data-testid=${`lib-download-${doc.doc_id}`} onClick=${() => run(() => downloadFile(doc.file))}>⇩ ${t('lib.download')}</button>
      ${canWrite
        ? html`<button type="button" class="btn btn-small btn-ghost" data-testid=${`lib-move-${doc.doc_id}`} onClick=${onMove}>${t('lib.move')}</button>
            <button
              type="button"
              class="btn btn-small btn-danger-ghost"
              data-testid=${`lib-remove-${doc.doc_id}`}
              onClick=${() => {
                if (window.confirm(t('lib.remove_doc_confirm', { name: doc.title }))) void run(() => lib.remove({ doc_id: doc.doc_id }));
              }}
            >
              ${t('lib.remove')}
            </button>`
        : null}
    </td>
  </tr>`;
}

function FolderRow({ ctx, folder, onMove }: { ctx: AppContext; folder: Folder; onMove: () => void }) {
  const lib = ctx.library;
  const [error, setError] = useState<ApiError | null>(null);
  return html`<tr class="lib-row lib-folder-row" data-testid=${`lib-folder-${folder.folder_id}`}>
    <td class="lib-name">
      <button type="button" class="lib-open" data-testid=${`lib-open-${folder.folder_id}`} onClick=${() => void lib.open(folder.folder_id)}>
        <${Icon} name="folder" />
        <span class="lib-title">${folder.name}</span>
      </button>
      ${folder.inherit ? null : html`<span class="lib-own-acl" title=${t('lib.own_acl_hint')}><${Icon} name="lock" /> ${t('lib.own_acl')}</span>`}
      <${ErrorNote} error=${error} />
    </td>
    <td class="muted small">${t('lib.folder')}</td>
    <td></td>
    <td class="lib-actions">
      <button type="button" class="btn btn-small btn-ghost" data-testid=${`lib-move-folder-${folder.folder_id}`} onClick=${onMove}>${t('lib.move')}</button>
      <button
        type="button"
        class="btn btn-small btn-danger-ghost"
        data-testid=${`lib-remove-folder-${folder.folder_id}`}
        onClick=${async () => {
          if (!window.confirm(t('lib.remove_folder_confirm', { name: folder.name }))) return;
          setError(null);
          try {
            await lib.remove({ folder_id: folder.folder_id });
          } catch (err) {
            setError(ApiError.from(err));
          }
        }}
      >
        ${t('lib.remove')}
      </button>
    </td>
  </tr>`;
}

// --- move ------------------------------------------------------------------------------------

function MoveDialog({ lib, item, from, onClose }: { lib: LibraryModel; item: Item; from: Id | null; onClose: () => void }) {
  const [at, setAt] = useState<{ id: Id | null; name: string; parent: Id | null }>({ id: null, name: t('lib.top'), parent: null });
  const [folders, setFolders] = useState<Folder[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    let live = true;
    lib
      .list(at.id)
      .then((data) => live && setFolders((data.folders ?? []).filter((f) => item.kind === 'doc' || f.folder_id !== item.folder.folder_id)))
      .catch((err: unknown) => live && setError(ApiError.from(err)));
    return () => {
      live = false;
    };
  }, [at.id]);
  const here = at.id === from || (item.kind === 'doc' && at.id === null);
  const go = async (folder: Folder | null) => {
    setError(null);
    if (!folder) {
      setAt({ id: null, name: t('lib.top'), parent: null });
      return;
    }
    setAt({ id: folder.folder_id, name: folder.name, parent: folder.parent_id });
  };
  const move = async () => {
    setBusy(true);
    setError(null);
    try {
      await lib.move(itemRef(item), at.id);
      toast(t('lib.moved', { name: itemName(item), to: at.name }), 'success');
      onClose();
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="modal-backdrop" onClick=${(e: Event) => e.target === e.currentTarget && onClose()}>
    <div class="modal lib-modal" role="dialog" aria-modal="true" aria-labelledby="lib-move-title" data-testid="lib-move-dialog">
      <h2 id="lib-move-title">${t('lib.move_title', { name: itemName(item) })}</h2>
      <div class="lib-move-at">
        ${at.id !== null
          ? html`<button type="button" class="btn btn-small btn-ghost" data-testid="lib-move-up" onClick=${async () => {
              if (!at.parent) return go(null);
              try {
                const data = await lib.list(at.parent);
                await go(data.folder);
              } catch {
                await go(null);
              }
            }}>↑ ${t('lib.up')}</button>`
          : null}
        <strong><${Icon} name="folder" /> ${at.name}</strong>
      </div>
      <ul class="lib-move-list">
        ${folders.map(
          (f) => html`<li key=${f.folder_id}>
            <button type="button" class="lib-open" data-testid=${`lib-move-to-${f.folder_id}`} onClick=${() => go(f)}><${Icon} name="folder" /> ${f.name}</button>
          </li>`,
        )}
        ${folders.length === 0 ? html`<li class="muted small">${t('lib.no_subfolders')}</li>` : null}
      </ul>
      <${ErrorNote} error=${error} testid="lib-move-error" />
      <div class="modal-actions">
        <button type="button" class="btn btn-ghost" onClick=${onClose}>${t('common.cancel')}</button>
        <button type="button" class="btn btn-primary" disabled=${busy || here} data-testid="lib-move-here" onClick=${move}>
          ${t('lib.move_here')}
        </button>
      </div>
    </div>
  </div>`;
}

// --- permissions -----------------------------------------------------------------------------

function AclDialog({ ctx, folder, onClose }: { ctx: AppContext; folder: Folder; onClose: () => void }) {
  const lib = ctx.library;
  const names = useStore(ctx.workflow.names);
  const departments = useStore(ctx.pager.departments);
  const [acl, setAcl] = useState<Acl | null>(null);
  const [person, setPerson] = useState<Recipient[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    void ctx.pager.loadDepartments();
    lib
      .getAcl(folder.folder_id)
      .then((a) => {
        setAcl(a);
        void ctx.workflow.resolveNames(a.entries.filter((e) => e.principal.kind === 'user').map((e) => e.principal.id));
      })
      .catch((err: unknown) => setError(ApiError.from(err)));
  }, [folder.folder_id]);

  const add = (kind: AclEntry['principal']['kind'], id: string) => {
    if (!acl || !id) return;
    if (acl.entries.some((e) => e.principal.kind === kind && e.principal.id === id)) return;
    setAcl({ ...acl, entries: [...acl.entries, { principal: { kind, id }, perms: ['read'] }] });
  };
  const toggle = (i: number, perm: Perm, on: boolean) => {
    if (!acl) return;
    setAcl({
      ...acl,
      // Each permission includes the ones before it: write needs read, manage needs both.
      entries: acl.entries.map((e, j) =>
        j === i ? { ...e, perms: on ? PERMS.slice(0, PERMS.indexOf(perm) + 1) : PERMS.slice(0, PERMS.indexOf(perm)) } : e,
      ),
    });
  };
  const principalLabel = (e: AclEntry) => {
    const { kind, id } = e.principal;
    if (kind === 'user') return html`<span><${Icon} name="user" /> ${names[id] || id}</span>`;
    if (kind === 'department') return html`<span><${Icon} name="dept" /> ${departments.find((d) => d.id === id)?.name ?? id}</span>`;
    return html`<span><${Icon} name="role" /> ${t('lib.acl.role_prefix')}${roleLabel(id)}</span>`;
  };
  const save = async () => {
    if (!acl) return;
    const empty = acl.entries.find((e) => e.perms.length === 0);
    if (empty) {
      setError(new ApiError({ code: 'bad_request', message: t('lib.acl.no_perms') }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await lib.setAcl(acl);
      toast(t('lib.acl.saved'), 'success');
      onClose();
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="modal-backdrop" onClick=${(e: Event) => e.target === e.currentTarget && onClose()}>
    <div class="modal lib-modal lib-acl" role="dialog" aria-modal="true" aria-labelledby="lib-acl-title" data-testid="lib-acl-dialog">
      <h2 id="lib-acl-title">${t('lib.acl.title', { name: folder.name })}</h2>
      ${!acl && !error ? html`<div class="empty">${t('board.loading')}</div>` : null}
      ${acl
        ? html`${folder.parent_id === null
              ? null
              : html`<label class="field-inline lib-acl-inherit">
                  <input
                    type="checkbox"
                    checked=${acl.inherit}
                    data-testid="lib-acl-inherit"
                    onChange=${(e: Event) => setAcl({ ...acl, inherit: (e.currentTarget as HTMLInputElement).checked })}
                  />
                  ${t('lib.acl.inherit')}
                </label>`}
            <p class="muted small">${folder.parent_id === null ? t('lib.acl.top_hint') : acl.inherit ? t('lib.acl.inherit_on') : t('lib.acl.inherit_off')}</p>
            <table class="lib-acl-table" data-testid="lib-acl-entries">
              <thead>
                <tr>
                  <th>${t('lib.acl.who')}</th>
                  ${PERMS.map((p) => html`<th key=${p} title=${permHint(p)}>${permLabel(p)}</th>`)}
                  <th></th>
                </tr>
              </thead>
              <tbody>
                ${acl.entries.map(
                  (e, i) => html`<tr key=${`${e.principal.kind}-${e.principal.id}`} data-testid=${`lib-acl-${e.principal.kind}-${e.principal.id}`} data-perms=${e.perms.join(',')}>
                    <td>${principalLabel(e)}</td>
                    ${PERMS.map(
                      (p) => html`<td key=${p} class="lib-acl-check">
                        <input
                          type="checkbox"
                          aria-label=${permLabel(p)}
                          checked=${e.perms.includes(p)}
                          data-testid=${`lib-acl-${e.principal.kind}-${e.principal.id}-${p}`}
                          onChange=${(ev: Event) => toggle(i, p, (ev.currentTarget as HTMLInputElement).checked)}
                        />
                      </td>`,
                    )}
                    <td>
                      <button type="button" class="pager-chip-x" title=${t('pager.remove')} data-testid=${`lib-acl-remove-${e.principal.kind}-${e.principal.id}`} onClick=${() => setAcl({ ...acl, entries: acl.entries.filter((_, j) => j !== i) })}>×</button>
                    </td>
                  </tr>`,
                )}
                ${acl.entries.length === 0 ? html`<tr><td colspan="5" class="muted small">${t('lib.acl.none')}</td></tr>` : null}
              </tbody>
            </table>
            <div class="lib-acl-add">
              <div class="lib-acl-add-person">
                <${PersonPicker}
                  people=${ctx.pager}
                  memory=${ctx.workflow}
                  prefix="lib-acl-user"
                  label=${t('lib.acl.add_person')}
                  chosen=${person}
                  onChange=${(r: Recipient[]) => {
                    setPerson([]);
                    if (r[0]) add('user', r[0].id);
                  }}
                />
              </div>
              <label class="field">
                <span class="field-label">${t('lib.acl.add_department')}</span>
                <select
                  data-testid="lib-acl-dept"
                  value=""
                  onChange=${(e: Event) => {
                    const el = e.currentTarget as HTMLSelectElement;
                    add('department', el.value);
                    el.value = '';
                  }}
                >
                  <option value="">${t('lib.acl.choose')}</option>
                  ${departmentTree(departments).map((o) => html`<option key=${o.id} value=${o.id}>${'\u3000'.repeat(o.depth)}${o.label}</option>`)}
                </select>
              </label>
              <label class="field">
                <span class="field-label">${t('lib.acl.add_role')}</span>
                <select
                  data-testid="lib-acl-role"
                  value=""
                  onChange=${(e: Event) => {
                    const el = e.currentTarget as HTMLSelectElement;
                    add('role', el.value);
                    el.value = '';
                  }}
                >
                  <option value="">${t('lib.acl.choose')}</option>
                  ${ROLES.map((r) => html`<option key=${r} value=${r}>${roleLabel(r)}</option>`)}
                </select>
              </label>
            </div>`
        : null}
      <${ErrorNote} error=${error} testid="lib-acl-error" />
      <div class="modal-actions">
        <button type="button" class="btn btn-ghost" onClick=${onClose}>${t('common.cancel')}</button>
        <button type="button" class="btn btn-primary" disabled=${busy || !acl} data-testid="lib-acl-save" onClick=${save}>${t('lib.acl.save')}</button>
      </div>
    </div>
  </div>`;
}

// --- search ----------------------------------------------------------------------------------

function Snippet({ snippet }: { snippet: string }) {
  return html`<span class="lib-snippet">${snippetParts(snippet).map((p) => (p.mark ? html`<mark>${p.text}</mark>` : p.text))}</span>`;
}

function SearchCard({ lib }: { lib: LibraryModel }) {
  const search = useStore(lib.search);
  const listing = useStore(lib.listing);
  const [query, setQuery] = useState('');
  const [within, setWithin] = useState(false);
  const submit = (e: Event) => {
    e.preventDefault();
    void lib.runSearch(query, within && listing.folder !== null);
  };
  return html`<section class="card lib-search" aria-labelledby="lib-search-title">
    <div class="card-header"><h2 id="lib-search-title">${t('lib.search')}</h2></div>
    <form class="lib-search-form" onSubmit=${submit} role="search">
      <input type="search" placeholder=${t('lib.search_placeholder')} value=${query} data-testid="lib-search-input" onInput=${(e: Event) => setQuery(inputValue(e))} />
      <button type="submit" class="btn btn-small btn-primary" disabled=${!query.trim()} data-testid="lib-search-submit">${t('lib.search_go')}</button>
    </form>
    ${listing.folder
      ? html`<label class="field-inline small lib-search-within">
          <input type="checkbox" checked=${within} data-testid="lib-search-within" onChange=${(e: Event) => setWithin((e.currentTarget as HTMLInputElement).checked)} />
          ${t('lib.search_within', { name: listing.folder.name })}
        </label>`
      : null}
    <${ErrorNote} error=${search.error} testid="lib-search-error" />
    ${search.loading ? html`<div class="empty">${t('lib.searching')}</div>` : null}
    ${search.searched && !search.loading && !search.error
      ? html`<div class="lib-hits-head muted small">
          <span data-testid="lib-hit-count" data-count=${search.hits.length}>${t('lib.hits', { n: search.hits.length, q: search.query })}</span>
          <button type="button" class="btn btn-small btn-ghost" onClick=${() => {
            setQuery('');
            lib.clearSearch();
          }}>${t('lib.search_clear')}</button>
        </div>`
      : null}
    <ul class="lib-hits" data-testid="lib-hits">
      ${search.hits.map(
        (h) => html`<li key=${h.doc_id} class="lib-hit" data-testid=${`lib-hit-${h.doc_id}`}>
          <div class="lib-hit-title"><${Icon} name="file" /> ${h.title}</div>
          ${h.snippet ? html`<div class="lib-hit-snippet" data-testid=${`lib-hit-snippet-${h.doc_id}`}><${Snippet} snippet=${h.snippet} /></div>` : null}
          <button type="button" class="lib-hit-folder" data-testid=${`lib-hit-folder-${h.doc_id}`} onClick=${() => void lib.open(h.folder_id)}>
            <${Icon} name="folder" /> ${t('lib.open_folder')}
          </button>
        </li>`,
      )}
    </ul>
    ${search.searched && !search.loading && search.hits.length === 0 && !search.error ? html`<div class="empty" data-testid="lib-no-hits">${t('lib.no_hits')}</div>` : null}
    ${!search.searched && !search.loading ? html`<p class="muted small lib-search-hint">${t('lib.search_hint')}</p>` : null}
  </section>`;
}

// --- the panel -------------------------------------------------------------------------------

export function LibraryPanel({ ctx }: { ctx: AppContext }) {
  const lib = ctx.library;
  const listing = useStore(lib.listing);
  const indexing = useStore(lib.indexing);
  const [making, setMaking] = useState(false);
  const [uploads, setUploads] = useState<Uploading[]>([]);
  const [moving, setMoving] = useState<Item | null>(null);
  const [acl, setAcl] = useState(false);
  useEffect(() => {
    if (!listing.loading && listing.folder === null && listing.folders.length === 0) void lib.reload();
  }, [lib]);
  const folder = listing.folder;
  const canWrite = listing.may.includes('write');
  const canManage = listing.may.includes('manage');
  const highlight = useStore(lib.search).hits.map((h) => h.doc_id);
  const empty = listing.folders.length === 0 && listing.docs.length === 0;
  return html`<div class="lib-layout" data-testid="lib-panel" data-folder-id=${folder?.folder_id ?? ''}>
    <section class="card lib-main" aria-labelledby="lib-title">
      <div class="card-header">
        <h2 id="lib-title">${t('lib.title')}</h2>
        <div class="lib-tools">
          ${folder === null || canWrite
            ? html`<button type="button" class="btn btn-small" data-testid="lib-new-folder" onClick=${() => setMaking(!making)}>＋ ${t('lib.new_folder')}</button>`
            : null}
          ${folder && canWrite ? html`<${UploadButton} lib=${lib} onChange=${setUploads} />` : null}
          ${folder && canManage
            ? html`<button type="button" class="btn btn-small btn-ghost" data-testid="lib-acl-open" onClick=${() => setAcl(true)}><${Icon} name="lock" /> ${t('lib.acl.open')}</button>`
            : null}
        </div>
      </div>
      <${Crumbs} lib=${lib} />
      ${folder && !canWrite ? html`<p class="muted small" data-testid="lib-read-only">${t('lib.read_only')}</p>` : null}
      ${making ? html`<${NewFolder} lib=${lib} onDone=${() => setMaking(false)} />` : null}
      ${uploads.length > 0
        ? html`<ul class="pager-uploads">
            ${uploads.map(
              (u) => html`<li key=${u.key} class=${`pager-upload${u.error ? ' failed' : ''}`} data-testid="lib-upload-progress">
                <span class="pager-upload-name">📎 ${u.name}</span>
                <span class="muted">${formatSize(u.size)}</span>
                ${u.error
                  ? html`<span class="pager-upload-error">${u.error.code === 'too_large' ? t('pager.file_too_large') : t('pager.upload_failed')}</span>`
                  : html`<progress max=${u.size || 1} value=${u.loaded}></progress>`}
              </li>`,
            )}
          </ul>`
        : null}
      <${ErrorNote} error=${listing.error} testid="lib-error" />
      ${!empty
        ? html`<table class="lib-table" data-testid="lib-list">
            <thead>
              <tr><th>${t('lib.col.name')}</th><th>${t('lib.col.size')}</th><th>${t('lib.col.added')}</th><th></th></tr>
            </thead>
            <tbody>
              ${listing.folders.map((f) => html`<${FolderRow} key=${`f-${f.folder_id}`} ctx=${ctx} folder=${f} onMove=${() => setMoving({ kind: 'folder', folder: f })} />`)}
              ${listing.docs.map(
                (d) => html`<${DocRow}
                  key=${`d-${d.doc_id}`}
                  ctx=${ctx}
                  doc=${d}
                  canWrite=${canWrite}
                  indexing=${indexing.has(d.doc_id)}
                  highlighted=${highlight.includes(d.doc_id)}
                  onMove=${() => setMoving({ kind: 'doc', doc: d })}
                />`,
              )}
            </tbody>
          </table>`
        : null}
      ${empty && !listing.error
        ? html`<div class="empty" data-testid="lib-empty">
            ${listing.loading ? t('board.loading') : folder ? t('lib.empty_folder') : t('lib.empty_top')}
          </div>`
        : null}
    </section>
    <aside class="lib-side">
      <${SearchCard} lib=${lib} />
    </aside>
    ${moving ? html`<${MoveDialog} lib=${lib} item=${moving} from=${moving.kind === 'doc' ? moving.doc.folder_id : moving.folder.parent_id} onClose=${() => setMoving(null)} />` : null}
    ${acl && folder ? html`<${AclDialog} ctx=${ctx} folder=${folder} onClose=${() => setAcl(false)} />` : null}
  </div>`;
}
