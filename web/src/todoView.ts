// The to-do inbox (待办), the landing view: open items (urgent first, then due time), the done
// tab, counts by kind, the notification prompt; clicking an item opens it in its own panel.
import { notifyPermission } from './alert';
import { ErrorNote } from './components';
import type { AppContext } from './context';
import { html } from './html';
import { formatAgo, formatDayTime, formatFull, t } from './i18n';
import { useStore } from './store';
import { toast } from './toast';
import { ApiError } from './http';
import { KIND_LABEL, TODO_KINDS, isOverdue, type TodoItem, type TodoKind, type TodoModel, type TodoState } from './todo';
import type { Id } from './types';

/** Open an approval task in the 审批 panel: find its request among my open tasks. */
async function openApproval(ctx: AppContext, taskId: Id): Promise<void> {
  const wf = ctx.workflow;
  const find = () => wf.lists.todo.get().items.find((i) => i.task?.task_id === taskId);
  let found = find();
  if (!found) {
    await wf.loadList('todo');
    found = find();
  }
  if (found) wf.select(found.instance_id, 'todo');
  else wf.tab.set('todo');
}

/** Show what the item is about in its own panel. */
export function openTodo(ctx: AppContext, item: TodoItem): void {
  switch (item.kind) {
    case 'circulation':
      location.hash = '#circulation';
      ctx.circulation.select('inbox', item.ref_id);
      break;
    case 'approval':
      location.hash = '#workflow';
      void openApproval(ctx, item.ref_id);
      break;
    case 'task':
    case 'meeting_action':
      location.hash = '#tasks';
      void ctx.tasks.open(item.ref_id);
      break;
    case 'schedule':
      location.hash = '#calendar';
      ctx.calendar.showWeekOf(item.due_at);
      break;
    default:
      break;
  }
}

const opens = (kind: TodoKind) => kind !== 'document' && kind !== 'notice';

function NotifyPrompt({ todo }: { todo: TodoModel }) {
  const permission = useStore(notifyPermission);
  const choice = useStore(todo.notifyChoice);
  if (permission !== 'default' || choice !== null) return null;
  return html`<div class="todo-notify" data-testid="todo-notify-prompt" role="note">
    <span class="todo-notify-icon" aria-hidden="true">!</span>
    <span>${t('todo.notify_prompt')}</span>
    <button type="button" class="btn btn-small btn-primary" data-testid="todo-notify-allow" onClick=${() => void todo.allowNotifications()}>
      ${t('todo.notify_allow')}
    </button>
    <button type="button" class="btn btn-small btn-ghost" data-testid="todo-notify-dismiss" onClick=${() => todo.dismissPrompt()}>
      ${t('todo.notify_later')}
    </button>
  </div>`;
}

function Row({ ctx, item, state }: { ctx: AppContext; item: TodoItem; state: TodoState }) {
  const overdue = state === 'open' && isOverdue(item);
  const urgent = item.urgency === 'urgent';
  const canOpen = opens(item.kind);
  const open = () => canOpen && openTodo(ctx, item);
  const dismiss = async (e: Event) => {
    e.stopPropagation();
    try {
      await ctx.todo.dismiss(item.todo_id);
    } catch (err) {
      toast(ApiError.from(err).message, 'error');
    }
  };
  return html`<li
    class=${`todo-item${urgent ? ' urgent' : ''}${overdue ? ' overdue' : ''}${canOpen ? ' clickable' : ''}`}
    data-testid=${`todo-item-${item.todo_id}`}
    data-kind=${item.kind}
    data-ref-id=${item.ref_id}
    data-urgency=${item.urgency}
    data-overdue=${overdue ? 'true' : 'false'}
    tabIndex=${canOpen ? 0 : undefined}
    onClick=${open}
    onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && open()}
  >
    <span class=${`todo-kind todo-kind-${item.kind}`}>${t(KIND_LABEL[item.kind])}</span>
    <div class="todo-main">
      <div class="todo-title">
        ${urgent ? html`<span class="todo-urgent" data-testid="todo-urgent">${t('todo.urgent')}</span>` : null}
        <span>${item.title}</span>
      </div>
      <div class="todo-meta muted small">
        ${item.from ? html`<span>${t('todo.from', { name: item.from.name })}</span>` : null}
        <span title=${formatFull(item.created_at)}>${formatAgo(item.created_at)}</span>
        ${state === 'done' && item.done_at ? html`<span>${t('todo.done_at', { time: formatDayTime(item.done_at) })}</span>` : null}
      </div>
    </div>
    <div class=${`todo-due${overdue ? ' overdue' : ''}`} data-testid="todo-due" title=${item.due_at ? formatFull(item.due_at) : ''}>
      ${item.due_at
        ? html`${overdue ? html`<strong>${t('todo.overdue')}</strong> ` : null}${t('todo.due', { time: formatDayTime(item.due_at) })}`
        : html`<span class="muted">${t('todo.no_due')}</span>`}
    </div>
    <div class="todo-actions">
      ${state === 'open' && item.kind === 'notice'
        ? html`<button type="button" class="btn btn-small" data-testid=${`todo-dismiss-${item.todo_id}`} onClick=${dismiss}>${t('todo.dismiss')}</button>`
        : null}
      ${canOpen
        ? html`<button type="button" class="btn btn-small btn-ghost" data-testid=${`todo-open-${item.todo_id}`} onClick=${(e: Event) => {
            e.stopPropagation();
            open();
          }}>${t('todo.open')} ›</button>`
        : null}
    </div>
  </li>`;
}

export function TodoPanel({ ctx }: { ctx: AppContext }) {
  const todo = ctx.todo;
  const tab = useStore(todo.tab);
  const counts = useStore(todo.counts);
  const filter = useStore(todo.kindFilter);
  const list = useStore(todo.lists[tab]);
  const items = filter ? list.items.filter((i) => i.kind === filter) : list.items;
  const kinds = TODO_KINDS.filter((k) => (counts.by_kind[k] ?? 0) > 0 || k === filter);
  return html`<section class="card todo-panel" aria-labelledby="todo-title" data-testid="todo-panel">
    <div class="card-header">
      <h2 id="todo-title">${t('todo.title')}</h2>
      <div class="todo-summary">
        <span class="todo-sum" data-testid="todo-count" data-count=${counts.open}>${t('todo.open_n', { n: counts.open })}</span>
        ${counts.urgent > 0 ? html`<span class="todo-sum urgent" data-testid="todo-urgent-count" data-count=${counts.urgent}>${t('todo.urgent_n', { n: counts.urgent })}</span>` : null}
        ${counts.overdue > 0 ? html`<span class="todo-sum overdue" data-testid="todo-overdue-count" data-count=${counts.overdue}>${t('todo.overdue_n', { n: counts.overdue })}</span>` : null}
      </div>
    </div>
    <${NotifyPrompt} todo=${todo} />
    <div class="pager-tabs" role="tablist">
      ${(['open', 'done'] as TodoState[]).map(
        (s) => html`<button
          key=${s}
          type="button"
          role="tab"
          aria-selected=${tab === s}
          class=${`pager-tab${tab === s ? ' active' : ''}`}
          data-testid=${`todo-tab-${s}`}
          onClick=${() => todo.setTab(s)}
        >
          ${t(s === 'open' ? 'todo.tab.open' : 'todo.tab.done')}
          ${s === 'open' && counts.open > 0 ? html` <span class="count-badge">${counts.open}</span>` : null}
        </button>`,
      )}
    </div>
    <div class="todo-kinds" role="group" aria-label=${t('todo.by_kind')}>
      <button type="button" class=${`todo-chip${filter === null ? ' active' : ''}`} data-testid="todo-kind-all" onClick=${() => todo.kindFilter.set(null)}>
        ${t('todo.all')}
      </button>
      ${kinds.map(
        (k) => html`<button
          key=${k}
          type="button"
          class=${`todo-chip${filter === k ? ' active' : ''}`}
          data-testid=${`todo-kind-${k}`}
          data-count=${counts.by_kind[k] ?? 0}
          onClick=${() => todo.kindFilter.set(filter === k ? null : k)}
        >
          ${t(KIND_LABEL[k])}${tab === 'open' ? html` <span class="count-badge">${counts.by_kind[k] ?? 0}</span>` : null}
        </button>`,
      )}
    </div>
    <${ErrorNote} error=${list.error} testid="todo-list-error" />
    <ul class="todo-list" data-testid=${`todo-list-${tab}`}>
      ${items.map((item) => html`<${Row} key=${item.todo_id} ctx=${ctx} item=${item} state=${tab} />`)}
    </ul>
    ${items.length === 0 && !list.error
      ? html`<div class="empty">${list.loading || !list.loaded ? t('board.loading') : t(tab === 'open' ? 'todo.empty' : 'todo.empty_done')}</div>`
      : null}
  </section>`;
}

/** In the navigation, next to the open count: how many are urgent. */
export function TodoNavExtra({ ctx }: { ctx: AppContext }) {
  const counts = useStore(ctx.todo.counts);
  if (counts.urgent <= 0) return null;
  return html`<span class="nav-badge nav-badge-urgent" data-testid="nav-todo-urgent" data-count=${counts.urgent} title=${t('todo.urgent_n', { n: counts.urgent })}>
    ${t('todo.urgent')}${counts.urgent}
  </span>`;
}
