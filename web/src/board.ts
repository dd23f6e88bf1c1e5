// The department whereabouts board (人员去向): the watched department, its members kept live by
// presence/whereabouts/notes deltas, and the table that shows them.
import { useState } from 'preact/hooks';
import type { Connection } from './api';
import { ErrorNote, PresenceDot, StatusBadge, presenceLabel } from './components';
import { ApiError } from './http';
import { html } from './html';
import { formatFull, formatUntil, t } from './i18n';
import { Store, useStore } from './store';
import { toast } from './toast';
import {
  STATUSES,
  type BoardMember,
  type Department,
  type Id,
  type MemberUser,
  type NotesWaiting,
  type PresenceChanged,
  type ServerEvent,
  type User,
  type WhereaboutsChanged,
} from './types';

/** The board deltas: each sets some fields of one member, so a later one can be laid again. */
const DELTAS = ['presence.changed', 'whereabouts.changed', 'notes.waiting'] as const;

/** The member and fields a board delta sets. */
function deltaOf(event: ServerEvent): { userId: Id; change: Partial<BoardMember> } | null {
  const data = event.data as Record<string, any> | undefined;
  if (!data || data.user_id === undefined) return null;
  const userId = String(data.user_id);
  switch (event.type) {
    case 'presence.changed':
      return { userId, change: { presence: data.presence, last_seen: data.last_seen } };
    case 'whereabouts.changed':
      return { userId, change: { whereabouts: data.whereabouts } };
    case 'notes.waiting':
      return { userId, change: { notes_waiting: data.notes_waiting } };
    default:
      return null;
  }
}

function withDelta(members: BoardMember[], userId: Id, change: Partial<BoardMember>): BoardMember[] {
  return members.map((m) => (m.user.id === userId ? { ...m, ...change } : m));
}

export class BoardModel {
  readonly departments = new Store<Department[]>([]);
  readonly departmentId = new Store<Id | null>(null);
  readonly members = new Store<BoardMember[]>([]);
  readonly loading = new Store<boolean>(false);
  readonly error = new Store<ApiError | null>(null);
  private request = 0;

  constructor(
    private readonly api: Connection,
    me: User,
  ) {
    this.departmentId.set(me.department_id ?? null);
    api.on('presence.changed', (data: PresenceChanged) =>
      this.patch(data.user_id, { presence: data.presence, last_seen: data.last_seen }),
    );
    api.on('whereabouts.changed', (data: WhereaboutsChanged) => {
      const member = this.patch(data.user_id, { whereabouts: data.whereabouts });
      if (member && data.reason === 'expired' && data.user_id !== me.id) {
        toast(t('board.expired', { name: member.user.name }));
      }
    });
    api.on('notes.waiting', (data: NotesWaiting) =>
      this.patch(data.user_id, { notes_waiting: data.notes_waiting }),
    );
    // Subscriptions belong to a connection: watch again after every (re)connect (and reset).
    api.onConnected(() => void this.reload());
  }

  member(userId: Id): BoardMember | undefined {
    return this.members.get().find((m) => m.user.id === userId);
  }

  /** Load what the board needs; subscribes when the socket is up. */
  async reload(): Promise<void> {
    if (this.departments.get().length === 0) await this.loadDepartments();
    await this.fetchBoard();
  }

  async loadDepartments(): Promise<void> {
    try {
      const { departments } = await this.api.command<{ departments: Department[] }>(
        'directory.departments',
        {},
      );
      this.departments.set(departments ?? []);
      if (this.departmentId.get() === null && departments.length > 0) {
        this.departmentId.set(departments[0].id);
      }
    } catch (err) {
      this.error.set(ApiError.from(err));
    }
  }

  /** Switch the watched department, unwatching the old one. */
  async watch(departmentId: Id): Promise<void> {
    const old = this.departmentId.get();
    if (old === departmentId) return;
    this.departmentId.set(departmentId);
    this.members.set([]);
    if (old !== null) {
      this.api.command('whereabouts.unwatch', { department_id: old }).catch(() => undefined);
    }
    await this.fetchBoard();
  }

  private async fetchBoard(): Promise<void> {
    const departmentId = this.departmentId.get();
    if (departmentId === null) return;
    const request = ++this.request;
    this.loading.set(true);
    try {
      const { answer, meanwhile } = await this.api.snapshot<{ members: BoardMember[] }>(
        'whereabouts.board',
        { department_id: departmentId },
        DELTAS,
      );
      if (request !== this.request) return; // a newer switch won
      // Deltas that came while the answer was on its way may be newer than it: lay them again.
      let members = answer.members ?? [];
      for (const event of meanwhile) {
        const delta = deltaOf(event);
        if (delta) members = withDelta(members, delta.userId, delta.change);
      }
      this.members.set(members);
      this.error.set(null);
    } catch (err) {
      if (request === this.request) this.error.set(ApiError.from(err));
    } finally {
      if (request === this.request) this.loading.set(false);
    }
  }

  private patch(userId: Id, change: Partial<BoardMember>): BoardMember | undefined {
    let updated: BoardMember | undefined;
    const next = this.members.get().map((m) => {
      if (m.user.id !== userId) return m;
      updated = { ...m, ...change };
      return updated;
    });
    if (updated) this.members.set(next);
    return updated;
  }

  /** Apply the answer of our own whereabouts.set at once; the push confirms it later. */
  applyOwnChange(userId: Id, whereabouts: unknown): void {
    if (typeof whereabouts !== 'object' || whereabouts === null || !('status' in whereabouts)) return;
    this.patch(userId, { whereabouts: whereabouts as BoardMember['whereabouts'] });
  }
}

// --- department tree select ------------------------------------------------------------------

interface TreeOption {
  id: Id;
  label: string;
  depth: number;
}

/** Departments in tree order (parents first, children indented below), cycles tolerated. */
export function departmentTree(departments: Department[]): TreeOption[] {
  const ids = new Set(departments.map((d) => d.id));
  const children = new Map<Id | null, Department[]>();
  for (const dept of departments) {
    const parent = dept.parent_id !== null && ids.has(dept.parent_id) ? dept.parent_id : null;
    const list = children.get(parent) ?? [];
    list.push(dept);
    children.set(parent, list);
  }
  const out: TreeOption[] = [];
  const seen = new Set<Id>();
  const walk = (parent: Id | null, depth: number) => {
    for (const dept of children.get(parent) ?? []) {
      if (seen.has(dept.id)) continue;
      seen.add(dept.id);
      out.push({ id: dept.id, label: dept.name, depth });
      walk(dept.id, depth + 1);
    }
  };
  walk(null, 0);
  // Anything caught in a parent cycle still gets listed.
  for (const dept of departments) if (!seen.has(dept.id)) out.push({ id: dept.id, label: dept.name, depth: 0 });
  return out;
}

function DepartmentSelect({ board }: { board: BoardModel }) {
  const departments = useStore(board.departments);
  const selected = useStore(board.departmentId);
  const options = departmentTree(departments);
  return html`<label class="field-inline">
    <span class="field-label">${t('board.department')}</span>
    <select
      class="dept-select"
      data-testid="dept-select"
      value=${selected ?? ''}
      onChange=${(e: Event) => void board.watch((e.currentTarget as HTMLSelectElement).value)}
    >
      ${selected !== null && !options.some((o) => o.id === selected)
        ? html`<option value=${selected}>${selected}</option>`
        : null}
      ${options.map(
        (o) => html`<option key=${o.id} value=${o.id}>
          ${'\u3000'.repeat(o.depth)}${o.depth > 0 ? '└ ' : ''}${o.label}
        </option>`,
      )}
    </select>
  </label>`;
}

// --- the board --------------------------------------------------------------------------------

export interface BoardActions {
  canSetFor: boolean;
  leaveNote: (user: MemberUser) => void;
  setFor: (user: MemberUser) => void;
}

function StatusSummary({ members }: { members: BoardMember[] }) {
  const counts = new Map<string, number>();
  for (const m of members) counts.set(m.whereabouts.status, (counts.get(m.whereabouts.status) ?? 0) + 1);
  return html`<div class="status-summary">
    <span class="summary-total">${t('board.summary_total', { n: members.length })}</span>
    ${STATUSES.filter((s) => counts.has(s)).map(
      (s) => html`<span class="summary-item" key=${s}>
        <${StatusBadge} status=${s} /> <b>${counts.get(s)}</b>
      </span>`,
    )}
  </div>`;
}

function BoardRow(props: { member: BoardMember; me: User; actions: BoardActions }) {
  const { member, me, actions } = props;
  const { user, whereabouts: wa } = member;
  const id = user.id;
  const isMe = id === me.id;
  const showLastSeen = member.presence === 'offline' && member.last_seen !== null;
  return html`<tr
    class=${`board-row presence-row-${member.presence}${isMe ? ' is-me' : ''}`}
    data-testid=${`board-row-${id}`}
  >
    <td class="col-person">
      <div class="person">
        <${PresenceDot}
          presence=${member.presence}
          lastSeen=${member.last_seen}
          testid=${`presence-${id}`}
        />
        <div class="person-text">
          <div class="person-name">
            ${user.name}${isMe ? html` <span class="me-tag">${t('board.me')}</span>` : null}
          </div>
          <div class="person-title">${user.title ?? ''}</div>
          ${showLastSeen
            ? html`<div class="last-seen">${presenceLabel(member.presence, member.last_seen)}</div>`
            : null}
        </div>
      </div>
    </td>
    <td class="col-status">
      <${StatusBadge} status=${wa.status} testid=${`status-${id}`} />
      ${wa.set_by && wa.set_by.id !== id
        ? html`<div class="set-by">${t('board.set_by', { name: wa.set_by.name })}</div>`
        : null}
    </td>
    <td class="col-detail">
      ${wa.note ? html`<div class="wa-note-text">${wa.note}</div>` : null}
      ${wa.location
        ? html`<div class="wa-location-text">${t('board.location', { place: wa.location })}</div>`
        : null}
    </td>
    <td class="col-until">
      <span
        data-testid=${`until-${id}`}
        data-until=${wa.until ?? ''}
        title=${wa.until ? formatFull(wa.until) : ''}
      >
        ${wa.until ? formatUntil(wa.until) : ''}
      </span>
    </td>
    <td class="col-notes">
      <span
        class=${`notes-waiting${member.notes_waiting > 0 ? ' has-notes' : ''}`}
        data-testid=${`notes-waiting-${id}`}
        data-count=${member.notes_waiting}
        title=${t('board.notes_waiting', { n: member.notes_waiting })}
      >
        ✉ ${member.notes_waiting}
      </span>
    </td>
    <td class="col-actions">
      <button
        type="button"
        class="btn btn-small"
        data-testid=${`note-to-${id}`}
        onClick=${() => actions.leaveNote(user)}
      >
        ${t('board.leave_note')}
      </button>
      ${actions.canSetFor && !isMe
        ? html`<button
            type="button"
            class="btn btn-small btn-ghost"
            data-testid=${`wa-for-${id}`}
            onClick=${() => actions.setFor(user)}
          >
            ${t('board.set_for')}
          </button>`
        : null}
    </td>
  </tr>`;
}

export function BoardView(props: { board: BoardModel; me: User; actions: BoardActions }) {
  const { board, me, actions } = props;
  const members = useStore(board.members);
  const loading = useStore(board.loading);
  const error = useStore(board.error);
  const [filter, setFilter] = useState('');
  const needle = filter.trim().toLowerCase();
  const shown = needle
    ? members.filter((m) =>
        [m.user.name, m.user.title ?? '', m.whereabouts.note ?? '']
          .some((text) => text.toLowerCase().includes(needle)),
      )
    : members;

  return html`<section class="card board" aria-labelledby="board-title">
    <div class="card-header">
      <h2 id="board-title">${t('board.title')}</h2>
      <div class="board-tools">
        <${DepartmentSelect} board=${board} />
        <input
          class="filter"
          type="search"
          placeholder=${t('board.filter')}
          value=${filter}
          onInput=${(e: Event) => setFilter((e.currentTarget as HTMLInputElement).value)}
        />
        <button type="button" class="btn btn-ghost btn-small" onClick=${() => void board.reload()}>
          ${t('board.refresh')}
        </button>
      </div>
    </div>
    <${ErrorNote} error=${error} testid="board-error" />
    <${StatusSummary} members=${members} />
    <div class="table-wrap">
      <table class="board-table" data-testid="board-table">
        <thead>
          <tr>
            <th class="col-person">${t('board.col.person')}</th>
            <th class="col-status">${t('board.col.status')}</th>
            <th class="col-detail">${t('board.col.detail')}</th>
            <th class="col-until">${t('board.col.until')}</th>
            <th class="col-notes">${t('board.col.notes')}</th>
            <th class="col-actions">${t('board.col.actions')}</th>
          </tr>
        </thead>
        <tbody>
          ${shown.map(
            (member) => html`<${BoardRow}
              key=${member.user.id}
              member=${member}
              me=${me}
              actions=${actions}
            />`,
          )}
        </tbody>
      </table>
      ${shown.length === 0
        ? html`<div class="empty">
            ${loading ? t('board.loading') : needle ? t('board.no_match') : t('board.empty')}
          </div>`
        : null}
    </div>
  </section>`;
}
