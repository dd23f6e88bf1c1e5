// The task board (交办): 交给我的 (report progress, complete, hand on) and 我交办的 (each
// assignee's state / percent / note, live), and the form to assign a task.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorNote } from './components';
import { newClientMsgId, type Recipient } from './compose';
import type { AppContext } from './context';
import { html } from './html';
import { ApiError } from './http';
import { formatDayTime, formatFull, t, type MessageKey } from './i18n';
import { PersonPicker } from './picker';
import { useStore } from './store';
import { TASK_BOXES, isOpenPart, type Part, type PartState, type Task, type TaskBox, type TasksModel } from './tasks';
import { toast } from './toast';

/** The shared person picker (picker.ts), under the name the calendar imports it by. */

const value = (e: Event) => (e.currentTarget as HTMLInputElement).value;

const STATE_LABEL: Record<PartState, MessageKey> = {
  open: 'task.state.open',
  in_progress: 'task.state.in_progress',
  done: 'task.state.done',
  handed_on: 'task.state.handed_on',
};

function Due({ task }: { task: Task }) {
  if (!task.due_at) return null;
  const late = new Date(task.due_at).getTime() < Date.now() && task.assignees.some(isOpenPart);
  return html`<span class=${`task-due${late ? ' overdue' : ''}`} title=${formatFull(task.due_at)}>
    ${late ? t('todo.overdue') + ' ' : ''}${t('todo.due', { time: formatDayTime(task.due_at) })}
  </span>`;
}

function Bar({ percent }: { percent: number }) {
  return html`<span class="task-bar" aria-hidden="true"><span style=${`width:${Math.max(0, Math.min(100, percent))}%`}></span></span>`;
}

/** My part: progress slider and note, complete, hand on. */
function MyActions({ ctx, task, part }: { ctx: AppContext; task: Task; part: Part }) {
  const model = ctx.tasks;
  const [percent, setPercent] = useState(part.percent);
  const [note, setNote] = useState('');
  const [to, setTo] = useState<Recipient[]>([]);
  const [handing, setHanding] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => setPercent(part.percent), [part.percent]);
  const run = async (action: () => Promise<void>, done: string) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      setNote('');
      toast(done, 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="task-actions" data-testid=${`task-actions-${task.task_id}`}>
    <label class="task-slider">
      <span class="field-label">${t('task.percent')}</span>
      <input
        type="range"
        min="0"
        max="100"
        step="5"
        value=${percent}
        data-testid="task-percent"
        onInput=${(e: Event) => setPercent(Number(value(e)))}
        onChange=${(e: Event) => setPercent(Number(value(e)))}
      />
      <output data-testid="task-percent-value">${percent}%</output>
    </label>
    <input type="text" class="input" placeholder=${t('task.note_placeholder')} value=${note} data-testid="task-note" onInput=${(e: Event) => setNote(value(e))} />
    <div class="task-buttons">
      <button type="button" class="btn btn-small" disabled=${busy} data-testid="task-progress" onClick=${() => run(() => model.progress(task.task_id, percent, note), t('task.progress_saved'))}>
        ${t('task.report')}
      </button>
      <button type="button" class="btn btn-small btn-primary" disabled=${busy} data-testid="task-complete" onClick=${() => run(() => model.complete(task.task_id, note), t('task.completed'))}>
        ✓ ${t('task.complete')}
      </button>
      <button type="button" class="btn btn-small btn-ghost" disabled=${busy} data-testid="task-handon" onClick=${() => setHanding(!handing)}>
        ${t('task.hand_on')}…
      </button>
    </div>
    ${handing
      ? html`<div class="task-handon">
          <${PersonPicker} people=${ctx.pager} prefix="task-to" label=${t('task.hand_on_to')} chosen=${to} onChange=${setTo} />
          <button
            type="button"
            class="btn btn-small btn-primary"
            disabled=${busy || to.length === 0}
            data-testid="task-handon-confirm"
            onClick=${() =>
              run(async () => {
                await model.reassign(task.task_id, to[0].id);
                setHanding(false);
                setTo([]);
              }, t('task.handed_on', { name: to[0]?.name ?? '' }))}
          >
            ${t('task.hand_on')}
          </button>
        </div>`
      : null}
    <${ErrorNote} error=${error} testid="task-error" />
  </div>`;
}

function PartsTable({ task }: { task: Task }) {
  return html`<table class="task-parts" data-testid=${`task-parts-${task.task_id}`}>
    <thead>
      <tr><th>${t('task.col.person')}</th><th>${t('task.col.state')}</th><th>${t('task.col.percent')}</th><th>${t('task.col.note')}</th><th>${t('task.col.updated')}</th></tr>
    </thead>
    <tbody>
      ${task.assignees.map(
        (p) => html`<tr key=${p.user_id} data-testid=${`task-part-${task.task_id}-${p.user_id}`} data-state=${p.state} data-percent=${p.percent}>
          <td>${p.name}</td>
          <td><span class=${`task-state task-state-${p.state}`}>${t(STATE_LABEL[p.state])}</span>${p.handed_to ? html` <span class="muted small">→ ${task.assignees.find((x) => x.user_id === p.handed_to)?.name ?? ''}</span>` : null}</td>
          <td><${Bar} percent=${p.percent} /> ${p.percent}%</td>
          <td class="task-note-cell">${p.note}</td>
          <td class="muted small">${p.updated_at ? formatDayTime(p.updated_at) : ''}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function TaskCard({ ctx, task, box, selected }: { ctx: AppContext; task: Task; box: TaskBox; selected: boolean }) {
  const ref = useRef<HTMLElement>(null);
  useEffect(() => {
    if (selected) ref.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }, [selected]);
  const mine = ctx.tasks.myPart(task);
  const urgent = task.urgency === 'urgent';
  return html`<article
    ref=${ref}
    class=${`task-card${urgent ? ' urgent' : ''}${selected ? ' selected' : ''}`}
    data-testid=${`task-${task.task_id}`}
    data-urgency=${task.urgency}
    data-state=${mine?.state ?? ''}
  >
    <div class="task-head">
      ${urgent ? html`<span class="todo-urgent">${t('todo.urgent')}</span>` : null}
      ${task.source === 'meeting' ? html`<span class="todo-kind todo-kind-meeting_action">${t('todo.kind.meeting_action')}</span>` : null}
      <strong class="task-title">${task.title}</strong>
      <span class="muted small">${box === 'mine' ? t('todo.from', { name: task.from.name }) : t('task.to_n', { n: task.assignees.length })}</span>
      <${Due} task=${task} />
    </div>
    ${task.body ? html`<div class="task-body">${task.body}</div>` : null}
    ${box === 'mine' && mine
      ? html`<div class="task-mine">
            <span class=${`task-state task-state-${mine.state}`} data-testid="task-my-state" data-state=${mine.state}>${t(STATE_LABEL[mine.state])}</span>
            <${Bar} percent=${mine.percent} /> <span>${mine.percent}%</span>
            ${mine.note ? html`<span class="muted small">${mine.note}</span>` : null}
          </div>
          ${isOpenPart(mine) ? html`<${MyActions} ctx=${ctx} task=${task} part=${mine} />` : null}`
      : html`<${PartsTable} task=${task} />`}
  </article>`;
}

function AssignForm({ ctx }: { ctx: AppContext }) {
  const [title, setTitle] = useState('');
  const [body, setBody] = useState('');
  const [to, setTo] = useState<Recipient[]>([]);
  const [due, setDue] = useState('');
  const [urgent, setUrgent] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [clientMsgId] = useState(newClientMsgId);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!title.trim() || to.length === 0) {
      setError(new ApiError({ code: 'bad_request', message: t('task.form_missing') }));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await ctx.tasks.assign(
        { title: title.trim(), body, assignees: to.map((r) => r.id), due_at: due ? new Date(due).toISOString() : null, urgent },
        clientMsgId,
      );
      toast(t('task.assigned'), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card task-form" data-testid="task-form" onSubmit=${submit}>
    <div class="card-header"><h2>${t('task.new')}</h2></div>
    <label class="field">
      <span class="field-label">${t('task.title_label')}</span>
      <input class="input" type="text" maxLength="200" value=${title} data-testid="task-title" onInput=${(e: Event) => setTitle(value(e))} />
    </label>
    <label class="field">
      <span class="field-label">${t('task.body_label')}</span>
      <textarea class="input" rows="3" value=${body} data-testid="task-body" onInput=${(e: Event) => setBody(value(e))}></textarea>
    </label>
    <${PersonPicker} people=${ctx.pager} prefix="task-assignee" label=${t('task.assignees')} chosen=${to} multiple=${true} onChange=${setTo} />
    <div class="task-form-row">
      <label class="field">
        <span class="field-label">${t('task.due_label')}</span>
        <input class="input" type="datetime-local" value=${due} data-testid="task-due" onInput=${(e: Event) => setDue(value(e))} />
      </label>
      <label class="field-inline">
        <input type="checkbox" checked=${urgent} data-testid="task-urgent" onChange=${(e: Event) => setUrgent((e.currentTarget as HTMLInputElement).checked)} />
        ${t('task.urgent_label')}
      </label>
    </div>
    <${ErrorNote} error=${error} testid="task-form-error" />
    <div class="task-buttons">
      <button type="submit" class="btn btn-primary" disabled=${busy} data-testid="task-assign">${t('task.assign')}</button>
      <button type="button" class="btn btn-ghost" onClick=${() => ctx.tasks.composing.set(false)}>${t('task.cancel')}</button>
    </div>
  </form>`;
}

export function TasksPanel({ ctx }: { ctx: AppContext }) {
  const model: TasksModel = ctx.tasks;
  const tab = useStore(model.tab);
  const list = useStore(model.lists[tab]);
  const selected = useStore(model.selected);
  const composing = useStore(model.composing);
  const label: Record<TaskBox, MessageKey> = { mine: 'task.box.mine', assigned: 'task.box.assigned' };
  const open = (tasks: Task[]) => tasks.filter((x) => (tab === 'mine' ? isOpenPart(model.myPart(x)) : x.assignees.some(isOpenPart)));
  const openTasks = open(list.tasks);
  const closedTasks = list.tasks.filter((x) => !openTasks.includes(x));
  return html`<div class="task-layout" data-testid="task-panel">
    <section class="card">
      <div class="card-header">
        <h2>${t('task.title')}</h2>
        <button type="button" class=${`btn btn-small${composing ? '' : ' btn-primary'}`} data-testid="task-new" onClick=${() => model.composing.set(!composing)}>
          ＋ ${t('task.new')}
        </button>
      </div>
      <div class="pager-tabs" role="tablist">
        ${TASK_BOXES.map(
          (box) => html`<button
            key=${box}
            type="button"
            role="tab"
            aria-selected=${tab === box}
            class=${`pager-tab${tab === box ? ' active' : ''}`}
            data-testid=${`task-tab-${box}`}
            onClick=${() => model.tab.set(box)}
          >
            ${t(label[box])}
          </button>`,
        )}
      </div>
      <${ErrorNote} error=${list.error} testid="task-list-error" />
      <div class="task-list" data-testid=${`task-list-${tab}`}>
        ${openTasks.map((x) => html`<${TaskCard} key=${x.task_id} ctx=${ctx} task=${x} box=${tab} selected=${x.task_id === selected} />`)}
        ${closedTasks.length > 0 ? html`<h3 class="task-section muted small">${t('task.finished')}</h3>` : null}
        ${closedTasks.map((x) => html`<${TaskCard} key=${x.task_id} ctx=${ctx} task=${x} box=${tab} selected=${x.task_id === selected} />`)}
      </div>
      ${list.tasks.length === 0 && !list.error ? html`<div class="empty">${list.loading ? t('board.loading') : t(tab === 'mine' ? 'task.empty.mine' : 'task.empty.assigned')}</div>` : null}
    </section>
    ${composing ? html`<${AssignForm} ctx=${ctx} />` : null}
  </div>`;
}
