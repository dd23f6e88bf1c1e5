// The message board (留言): notes left for me, kept live by note.received, and the dialog to
// leave a note for someone on the board.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Connection } from './api';
import { ErrorNote } from './components';
import { ApiError } from './http';
import { html } from './html';
import { formatAgo, formatFull, t } from './i18n';
import { Store, useStore } from './store';
import { toast } from './toast';
import type { Id, MemberUser, Note, NoteReceived } from './types';

function newestFirst(a: Note, b: Note): number {
  return b.at.localeCompare(a.at);
}

export class NotesModel {
  readonly notes = new Store<Note[]>([]);
  readonly error = new Store<ApiError | null>(null);

  constructor(private readonly api: Connection) {
    api.on('note.received', (data: NoteReceived) => this.received(data));
    // After every (re)connect, reset included: the stream is in step by then (see onConnected).
    api.onConnected(() => void this.reload());
  }

  unreadCount(): number {
    return this.notes.get().filter((n) => !n.read_at).length;
  }

  async reload(): Promise<void> {
    try {
      const { notes } = await this.api.command<{ notes: Note[] }>('notes.list', {});
      const mine = new Map(this.notes.get().map((n) => [n.id, n]));
      // A note once read stays read: a list read before notes.read committed must not undo it.
      const listed = (notes ?? []).map((n) => {
        const readAt = mine.get(n.id)?.read_at;
        return !n.read_at && readAt ? { ...n, read_at: readAt } : n;
      });
      // Keep anything pushed meanwhile that the list did not include yet.
      const ids = new Set(listed.map((n) => n.id));
      const pushed = this.notes.get().filter((n) => !ids.has(n.id) && !n.read_at);
      this.notes.set([...listed, ...pushed].sort(newestFirst));
      this.error.set(null);
    } catch (err) {
      this.error.set(ApiError.from(err));
    }
  }

  private received(data: NoteReceived): void {
    if (this.notes.get().some((n) => n.id === data.note_id)) return;
    const note: Note = { id: data.note_id, from: data.from, body: data.body, at: data.at, read_at: null };
    this.notes.set([note, ...this.notes.get()].sort(newestFirst));
    toast(t('notes.received_toast', { name: data.from?.name ?? '', body: data.body }), 'info', 8000);
  }

  async markRead(ids: Id[]): Promise<void> {
    if (ids.length === 0) return;
    try {
      await this.api.command('notes.read', { note_ids: ids });
      const now = new Date().toISOString();
      const wanted = new Set(ids);
      this.notes.update((list) => list.map((n) => (wanted.has(n.id) && !n.read_at ? { ...n, read_at: now } : n)));
      this.error.set(null);
    } catch (err) {
      this.error.set(ApiError.from(err));
    }
  }

  leave(to: Id, body: string): Promise<{ note_id: Id }> {
    return this.api.command<{ note_id: Id }>('notes.leave', { to, body });
  }
}

export function NotesPanel({ notes }: { notes: NotesModel }) {
  const list = useStore(notes.notes);
  const error = useStore(notes.error);
  const unread = list.filter((n) => !n.read_at);
  return html`<section class="card notes-panel" id="notes-panel" data-testid="notes-panel" aria-labelledby="notes-title">
    <div class="card-header">
      <h2 id="notes-title">
        ${t('notes.title')}
        ${unread.length > 0 ? html` <span class="count-badge" data-testid="notes-unread-count">${unread.length}</span>` : null}
      </h2>
      ${unread.length > 0
        ? html`<button
            type="button"
            class="link"
            data-testid="notes-read-all"
            onClick=${() => void notes.markRead(unread.map((n) => n.id))}
          >
            ${t('notes.mark_all_read')}
          </button>`
        : null}
    </div>
    <${ErrorNote} error=${error} />
    ${list.length === 0 ? html`<div class="empty">${t('notes.empty')}</div>` : null}
    <ul class="note-list">
      ${list.map(
        (note) => html`<li
          key=${note.id}
          class=${`note${note.read_at ? '' : ' unread'}`}
          data-testid=${`note-${note.id}`}
          data-read=${note.read_at ? 'true' : 'false'}
        >
          <div class="note-head">
            <span class="note-from">${note.from?.name ?? ''}</span>
            <time class="note-time" datetime=${note.at} title=${formatFull(note.at)}>${formatAgo(note.at)}</time>
          </div>
          <div class="note-body">${note.body}</div>
          ${note.read_at
            ? null
            : html`<button
                type="button"
                class="link note-read"
                data-testid=${`note-read-${note.id}`}
                onClick=${() => void notes.markRead([note.id])}
              >
                ${t('notes.mark_read')}
              </button>`}
        </li>`,
      )}
    </ul>
  </section>`;
}

/** Who the note dialog is open for; null when closed. */
export const noteTarget = new Store<MemberUser | null>(null);

export function NoteDialog({ notes }: { notes: NotesModel }) {
  const target = useStore(noteTarget);
  if (!target) return null;
  // A form of its own for each person, empty from the moment it shows. (It used to be emptied
  // by an effect, which runs only after the dialog has been painted: what was typed in between
  // was wiped, and the note refused as empty.)
  return html`<${NoteForm} key=${target.id} notes=${notes} target=${target} />`;
}

function NoteForm({ notes, target }: { notes: NotesModel; target: MemberUser }) {
  const [body, setBody] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const textarea = useRef<HTMLTextAreaElement>(null);

  // Before the browser regains control, so a keystroke cannot come first.
  useLayoutEffect(() => {
    textarea.current?.focus();
  }, []);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') noteTarget.set(null);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const submit = async (event: Event) => {
    event.preventDefault();
    const text = body.trim();
    if (!text) {
      setError(new ApiError({ code: 'bad_request', message: t('notes.empty_body') }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await notes.leave(target.id, text);
      toast(t('notes.sent', { name: target.name }), 'success');
      noteTarget.set(null);
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };

  return html`<div class="modal-backdrop" onClick=${(e: Event) => e.target === e.currentTarget && noteTarget.set(null)}>
    <div class="modal" role="dialog" aria-modal="true" aria-labelledby="note-dialog-title" data-testid="note-dialog">
      <form onSubmit=${submit} class="form">
        <h2 id="note-dialog-title">${t('notes.dialog_title', { name: target.name })}</h2>
        <label class="field">
          <span class="field-label">${t('notes.body')}</span>
          <textarea
            ref=${textarea}
            rows="4"
            maxlength="2000"
            data-testid="note-body"
            placeholder=${t('notes.body_placeholder')}
            value=${body}
            onInput=${(e: Event) => setBody((e.currentTarget as HTMLTextAreaElement).value)}
          ></textarea>
        </label>
        <${ErrorNote} error=${error} testid="note-error" />
        <div class="modal-actions">
          <button type="button" class="btn btn-ghost" onClick=${() => noteTarget.set(null)}>
            ${t('notes.cancel')}
          </button>
          <button type="submit" class="btn btn-primary" data-testid="note-submit" disabled=${busy}>
            ${busy ? t('notes.sending') : t('notes.submit')}
          </button>
        </div>
      </form>
    </div>
  </div>`;
}
