// The file library (文件库): folders and their documents (`library.list`), the way down to the
// open folder (breadcrumbs), making folders, uploading into one (POST /api/v1/files, then
// `library.add`), moving and removing, a folder's permissions (`library.acl.get` / `.set`),
// search with highlighted snippets (`library.search`) and which just-added documents are still
// being indexed (until `library.indexed`). The views are in libraryView.ts.
import type { Connection } from './api';
import { uploadFile } from './files';
import { ApiError } from './http';
import { Store } from './store';
import type { Id } from './types';

export type Perm = 'read' | 'write' | 'manage';
export const PERMS: Perm[] = ['read', 'write', 'manage'];

export interface Folder {
  folder_id: Id;
  parent_id: Id | null;
  name: string;
  inherit: boolean;
}

export interface LibDoc {
  doc_id: Id;
  folder_id: Id;
  title: string;
  file: { file_id: Id; name: string; size: number; content_type?: string | null };
  added_by: Id;
  added_at: string;
}

export interface Listing {
  /** the open folder; null at the top (the folders one may read that have no readable parent) */
  folder: Folder | null;
  folders: Folder[];
  docs: LibDoc[];
  /** what I may do in the open folder */
  may: Perm[];
  loading: boolean;
  error: ApiError | null;
}

export interface Crumb {
  folder_id: Id;
  name: string;
}

export type AclPrincipal = { kind: 'user' | 'department' | 'role'; id: string };

export interface AclEntry {
  principal: AclPrincipal;
  perms: Perm[];
}

export interface Acl {
  folder_id: Id;
  inherit: boolean;
  entries: AclEntry[];
}

export interface Hit {
  doc_id: Id;
  title: string;
  folder_id: Id;
  /** HTML-escaped text with `<mark>…</mark>` around the matches */
  snippet: string;
}

export interface SearchState {
  query: string;
  /** searched within this folder (and below), or everywhere */
  folder_id: Id | null;
  hits: Hit[];
  loading: boolean;
  searched: boolean;
  error: ApiError | null;
}

const EMPTY_SEARCH: SearchState = { query: '', folder_id: null, hits: [], loading: false, searched: false, error: null };
const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
const MAX_UP = 12;

export class LibraryModel {
  readonly listing = new Store<Listing>({ folder: null, folders: [], docs: [], may: [], loading: false, error: null });
  readonly path = new Store<Crumb[]>([]);
  /** documents added here whose text is not yet searchable */
  readonly indexing = new Store<ReadonlySet<Id>>(new Set());
  readonly search = new Store<SearchState>(EMPTY_SEARCH);
  private request = 0;
  private searchRequest = 0;
  /** `library.indexed` can overtake the answer to `library.add`: remember what came */
  private readonly indexed = new Set<Id>();
  private reloadTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly api: Connection) {
    api.on('library.indexed', (data: { doc_id?: unknown }) => {
      const id = str(data?.doc_id);
      this.indexed.add(id);
      if (!this.indexing.get().has(id)) return;
      const next = new Set(this.indexing.get());
      next.delete(id);
      this.indexing.set(next);
    });
    // Added from another tab of mine: show it when its folder is open.
    api.on('library.added', (data: { folder_id?: unknown }) => {
      if (str(data?.folder_id) !== this.folderId) return;
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => void this.reload(), 200);
    });
    api.onConnected(() => void this.reload());
  }

  get folderId(): Id | null {
    return this.listing.get().folder?.folder_id ?? null;
  }

  reload(): Promise<void> {
    return this.open(this.folderId);
  }

  /** Open a folder (null: the top) and work out the way down to it. */
  async open(folderId: Id | null): Promise<void> {
    const mine = ++this.request;
    this.listing.update((l) => ({ ...l, loading: true, error: null }));
    try {
      const data = await this.list(folderId);
      if (mine !== this.request) return;
      this.listing.set({
        folder: data.folder ?? null,
        folders: data.folders ?? [],
        docs: data.docs ?? [],
        may: (data.may ?? []) as Perm[],
        loading: false,
        error: null,
      });
      const path = await this.pathTo(data.folder ?? null);
      if (mine === this.request) this.path.set(path);
    } catch (err) {
      if (mine !== this.request) return;
      this.listing.update((l) => ({ ...l, loading: false, error: ApiError.from(err) }));
    }
  }

  list(folderId: Id | null): Promise<{ folder: Folder | null; folders: Folder[]; docs: LibDoc[]; may?: string[] }> {
    return this.api.command('library.list', folderId ? { folder_id: folderId } : {});
  }

  /** The crumbs down to `folder`: from what is known, else up through the parents I may read. */
  private async pathTo(folder: Folder | null): Promise<Crumb[]> {
    if (!folder) return [];
    const here: Crumb = { folder_id: folder.folder_id, name: folder.name };
    const known = this.path.get();
    const at = known.findIndex((c) => c.folder_id === folder.folder_id);
    if (at >= 0) return [...known.slice(0, at), here];
    if (folder.parent_id && known.length > 0 && known[known.length - 1].folder_id === folder.parent_id) return [...known, here];
    const up: Crumb[] = [here];
    let parent = folder.parent_id;
    for (let i = 0; parent && i < MAX_UP; i += 1) {
      try {
        const data = await this.list(parent);
        if (!data.folder) break;
        up.unshift({ folder_id: data.folder.folder_id, name: data.folder.name });
        parent = data.folder.parent_id;
      } catch {
        break; // a parent I may not read: the way starts below it
      }
    }
    return up;
  }

  async createFolder(name: string): Promise<Id> {
    const parent = this.folderId;
    const { folder_id } = await this.api.command<{ folder_id: Id }>('library.folder.create', parent ? { name, parent_id: parent } : { name });
    await this.reload();
    return folder_id;
  }

  /** Upload a file and add it to the open folder; it stays "indexing" until `library.indexed`. */
  async upload(file: File, title: string | null, onProgress: (loaded: number, total: number) => void): Promise<Id> {
    const folder = this.folderId;
    if (!folder) throw new ApiError({ code: 'bad_request', message: 'no folder' });
    const info = await uploadFile(file, onProgress);
    const payload: Record<string, unknown> = { folder_id: folder, file_id: info.file_id };
    if (title) payload.title = title;
    const { doc_id } = await this.api.command<{ doc_id: Id }>('library.add', payload);
    if (!this.indexed.has(str(doc_id))) this.indexing.set(new Set([...this.indexing.get(), str(doc_id)]));
    await this.reload();
    return str(doc_id);
  }

  async move(item: { doc_id: Id } | { folder_id: Id }, to: Id | null): Promise<void> {
    await this.api.command('library.move', to ? { ...item, to } : item);
    await this.reload();
  }

  async remove(item: { doc_id: Id } | { folder_id: Id }): Promise<void> {
    await this.api.command('library.remove', item);
    if ('folder_id' in item && item.folder_id === this.folderId) {
      await this.open(this.listing.get().folder?.parent_id ?? null);
    } else {
      await this.reload();
    }
  }

  async getAcl(folderId: Id): Promise<Acl> {
    const data = await this.api.command<{ folder_id: Id; inherit: boolean; entries: Record<string, unknown>[] }>('library.acl.get', { folder_id: folderId });
    return {
      folder_id: str(data.folder_id),
      inherit: data.inherit !== false,
      entries: (data.entries ?? []).map((e) => ({
        principal: e.user_id !== undefined && e.user_id !== null
          ? { kind: 'user', id: str(e.user_id) }
          : e.department_id !== undefined && e.department_id !== null
            ? { kind: 'department', id: str(e.department_id) }
            : { kind: 'role', id: str(e.role) },
        perms: (Array.isArray(e.perms) ? e.perms : []).filter((p): p is Perm => PERMS.includes(p as Perm)),
      })),
    };
  }

  async setAcl(acl: Acl): Promise<void> {
    const key = { user: 'user_id', department: 'department_id', role: 'role' } as const;
    await this.api.command('library.acl.set', {
      folder_id: acl.folder_id,
      inherit: acl.inherit,
      entries: acl.entries.map((e) => ({ [key[e.principal.kind]]: e.principal.id, perms: e.perms })),
    });
    await this.reload();
  }

  async runSearch(query: string, withinFolder: boolean): Promise<void> {
    const q = query.trim();
    const mine = ++this.searchRequest;
    if (!q) {
      this.search.set(EMPTY_SEARCH);
      return;
    }
    const folder_id = withinFolder ? this.folderId : null;
    this.search.set({ query: q, folder_id, hits: [], loading: true, searched: false, error: null });
    try {
      const { hits } = await this.api.command<{ hits: Hit[] }>('library.search', folder_id ? { query: q, folder_id } : { query: q });
      if (mine !== this.searchRequest) return;
      this.search.set({
        query: q,
        folder_id,
        hits: (hits ?? []).map((h) => ({ doc_id: str(h.doc_id), title: h.title ?? '', folder_id: str(h.folder_id), snippet: h.snippet ?? '' })),
        loading: false,
        searched: true,
        error: null,
      });
    } catch (err) {
      if (mine === this.searchRequest) this.search.set({ query: q, folder_id, hits: [], loading: false, searched: true, error: ApiError.from(err) });
    }
  }

  clearSearch(): void {
    this.searchRequest += 1;
    this.search.set(EMPTY_SEARCH);
  }
}

/**
 * A search snippet as nodes' worth of parts: the server escapes the text and wraps matches in
 * `<mark>…</mark>`; anything else that looks like markup stays text. Returns plain strings and
 * marked strings, unescaped, for the view to render without innerHTML.
 */
export function snippetParts(snippet: string): { text: string; mark: boolean }[] {
  const unescape = (s: string) =>
    s.replace(/&(lt|gt|quot|#39|#x27|apos|amp);/g, (_, e: string) =>
      ({ lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'", apos: "'", amp: '&' })[e] ?? '',
    );
  const parts: { text: string; mark: boolean }[] = [];
  const re = /<mark>([\s\S]*?)<\/mark>/g;
  let last = 0;
  for (let m = re.exec(snippet); m; m = re.exec(snippet)) {
    if (m.index > last) parts.push({ text: unescape(snippet.slice(last, m.index)), mark: false });
    parts.push({ text: unescape(m[1]), mark: true });
    last = re.lastIndex;
  }
  if (last < snippet.length) parts.push({ text: unescape(snippet.slice(last)), mark: false });
  return parts;
}
