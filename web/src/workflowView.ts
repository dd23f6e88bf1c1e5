// The approvals panel (审批): 待我审批 / 我的申请 / 已处理 with a count of open tasks, the new
// request form rendered from a definition, a request's live step view (steps, who holds each
// task, when, comments, the trail) with the applicant's 撤回 / 催办 / 重新提交 and the approver's
// 同意 / 退回 / 驳回 / 转交, delegation (代签) settings, and for administrators a plain editor
// that stores a new version of a definition.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorNote } from './components';
import { AttachButton, UploadList, newClientMsgId, useUploads, type Recipient, type Uploads } from './compose';
import { PersonPicker } from './picker';
import type { AppContext } from './context';
import { downloadFile } from './files';
import { ApiError } from './http';
import { html } from './html';
import { formatAgo, formatDayTime, formatFull, hasKey, localInputValue, t, type MessageKey } from './i18n';
import type { PagerModel } from './pager';
import { useStore } from './store';
import { toast } from './toast';
import type { FileInfo, Id, PersonRef } from './types';
import {
  APPROVER_KINDS,
  BOXES,
  FIELD_TYPES,
  STEP_MODES,
  WHEN_OPS,
  actionableTask,
  type ActAction,
  type ApproverKind,
  type Box,
  type Definition,
  type Delegation,
  type FieldType,
  type FormField,
  type Instance,
  type InstanceState,
  type OnEmpty,
  type StepDef,
  type StepMode,
  type TaskState,
  type WfItem,
  type WfTask,
  type WhenOp,
  type WorkflowModel,
} from './workflow';

const badRequest = (message: string) => new ApiError({ code: 'bad_request', message });

/** A key of the dictionary, or the fallback when the server says something we have no word for. */
function label(key: string, fallback: string): string {
  return hasKey(key) ? t(key) : fallback;
}

export function stateLabel(state: InstanceState): string {
  return label(`wf.state.${state}`, state);
}

function taskStateLabel(state: TaskState): string {
  return label(`wf.task.${state}`, state);
}

export function actionLabel(action: string): string {
  return label(`wf.action.${action}`, action);
}

/** "张伟（代王明）": who acted, and for whom. */
export function personLabel(who: PersonRef, behalf: PersonRef | null | undefined): string {
  const name = who.name || who.id;
  return behalf ? t('wf.on_behalf', { name, for: behalf.name || behalf.id }) : name;
}

function defName(wf: WorkflowModel, key: string): string {
  return wf.definition(key)?.name ?? key;
}

/** Now, ticking every second until `until` (an ISO time) has passed. */
function useNow(until: string | null | undefined): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const target = until ? Date.parse(until) : NaN;
    setNow(Date.now());
    if (Number.isNaN(target) || target <= Date.now()) return undefined;
    const timer = setInterval(() => {
      setNow(Date.now());
      if (Date.now() >= target) clearInterval(timer);
    }, 1000);
    return () => clearInterval(timer);
  }, [until]);
  return now;
}

/** "9:59", "1:02:03" */
function countdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

const inputValue = (e: Event) => (e.currentTarget as HTMLInputElement).value;

function StateBadge({ state, testid }: { state: InstanceState; testid?: string }) {
  return html`<span class=${`wf-badge wf-state-${state}`} data-testid=${testid} data-state=${state}>${stateLabel(state)}</span>`;
}

function TaskBadge({ state }: { state: TaskState }) {
  return html`<span class=${`wf-badge wf-task-${state}`} data-state=${state}>${taskStateLabel(state)}</span>`;
}

function Time({ iso, ago }: { iso: string | null | undefined; ago?: boolean }) {
  if (!iso) return null;
  return html`<time datetime=${iso} title=${formatFull(iso)}>${ago ? formatAgo(iso) : formatDayTime(iso)}</time>`;
}

// --- lists ------------------------------------------------------------------------------------

function ItemRow({ wf, item, box, active }: { wf: WorkflowModel; item: WfItem; box: Box; active: boolean }) {
  const select = () => wf.select(item.instance_id, box);
  const open = box === 'todo';
  const when = box === 'mine' ? item.updated_at : (item.task?.acted_at ?? item.created_at);
  return html`<li
    class=${['pager-item', 'wf-item', open && 'unread', active && 'active'].filter(Boolean).join(' ')}
    data-testid=${`wf-item-${item.instance_id}`}
    data-state=${item.state}
    data-task-id=${item.task?.task_id}
    tabindex="0"
    onClick=${select}
    onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && select()}
  >
    <div class="pager-item-head">
      <span class="pager-item-who wf-item-title">${item.title}</span>
      <time class="pager-time" datetime=${when} title=${formatFull(when)}>${formatAgo(when)}</time>
    </div>
    <div class="pager-item-foot wf-item-foot">
      <span class="wf-def-tag">${defName(wf, item.key)}</span>
      ${box === 'done' && item.task
        ? html`<span class="muted">${t('wf.my_part')}</span><${TaskBadge} state=${item.task.state} />`
        : null}
      <${StateBadge} state=${item.state} />
    </div>
  </li>`;
}

function Lists({ wf }: { wf: WorkflowModel }) {
  const tab = useStore(wf.tab);
  const todo = useStore(wf.lists.todo);
  const mine = useStore(wf.lists.mine);
  const done = useStore(wf.lists.done);
  const count = useStore(wf.unread);
  const view = useStore(wf.view);
  useStore(wf.definitions);
  const list = tab === 'todo' ? todo : tab === 'mine' ? mine : done;
  const activeId = view?.kind === 'item' ? view.id : null;
  const tabLabel: Record<Box, MessageKey> = { todo: 'wf.box.todo', mine: 'wf.box.mine', done: 'wf.box.done' };
  const empty: Record<Box, MessageKey> = { todo: 'wf.empty.todo', mine: 'wf.empty.mine', done: 'wf.empty.done' };
  return html`<section class="card pager-lists wf-lists" aria-labelledby="wf-list-title">
    <div class="card-header">
      <h2 id="wf-list-title">${t('wf.title')}</h2>
      <button
        type="button"
        class=${`btn btn-small${view?.kind === 'start' ? '' : ' btn-primary'}`}
        data-testid="wf-new"
        onClick=${() => wf.startNew()}
      >
        ＋ ${t('wf.new')}
      </button>
    </div>
    <div class="pager-tabs" role="tablist">
      ${BOXES.map(
        (box) => html`<button
          key=${box}
          type="button"
          role="tab"
          aria-selected=${tab === box}
          class=${`pager-tab${tab === box ? ' active' : ''}`}
          data-testid=${`wf-tab-${box}`}
          onClick=${() => wf.tab.set(box)}
        >
          ${t(tabLabel[box])}
          ${box === 'todo' && count > 0 ? html` <span class="count-badge" data-testid="wf-todo-count" data-count=${count}>${count}</span>` : null}
        </button>`,
      )}
    </div>
    <${ErrorNote} error=${list.error} testid="wf-list-error" />
    <ul class="pager-list" data-testid=${`wf-list-${tab}`}>
      ${list.items.map(
        (item) => html`<${ItemRow}
          key=${item.task?.task_id ?? item.instance_id}
          wf=${wf}
          item=${item}
          box=${tab}
          active=${item.instance_id === activeId}
        />`,
      )}
    </ul>
    ${list.items.length === 0 && !list.error ? html`<div class="empty">${list.loading ? t('board.loading') : t(empty[tab])}</div>` : null}
    ${list.hasMore && list.items.length > 0 && tab !== 'todo'
      ? html`<button
          type="button"
          class="btn btn-small btn-ghost btn-block"
          data-testid="wf-load-more"
          disabled=${list.loading}
          onClick=${() => void wf.loadList(tab, true)}
        >
          ${list.loading ? t('board.loading') : t('pager.load_more')}
        </button>`
      : null}
    <div class="wf-side-links">
      <button
        type="button"
        class=${`btn btn-small btn-ghost${view?.kind === 'delegation' ? ' active' : ''}`}
        data-testid="wf-delegation-open"
        onClick=${() => wf.showDelegations()}
      >
        ⇄ ${t('wf.deleg.title')}
      </button>
      ${wf.isAdmin
        ? html`<button
            type="button"
            class=${`btn btn-small btn-ghost${view?.kind === 'define' ? ' active' : ''}`}
            data-testid="wf-define-open"
            onClick=${() => wf.showDefine()}
          >
            ⚙ ${t('wf.define.title')}
          </button>`
        : null}
    </div>
  </section>`;
}

// --- the form of a definition -----------------------------------------------------------------

/** What a form field holds while it is being filled in. */
type RawValue = string | Recipient[] | FileInfo | null;
export type RawValues = Record<string, RawValue>;

/** Text fields that take more than a line. */
function isLongText(field: FormField): boolean {
  return /^(reason|remark|remarks|note|notes|content|comment|description|purpose)$/.test(field.name) || /事由|原因|说明|备注|意见|内容/.test(field.label);
}

/** The form as the server wants it: numbers as numbers, date-times in ISO-8601 UTC, ids. */
export function formPayload(fields: FormField[], values: RawValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const value = values[field.name];
    if (field.type === 'user') {
      const chosen = Array.isArray(value) ? value : [];
      if (chosen.length) out[field.name] = chosen[0].id;
    } else if (field.type === 'file') {
      const file = value && typeof value === 'object' && !Array.isArray(value) ? value : null;
      if (file) out[field.name] = file.file_id;
    } else {
      const text = typeof value === 'string' ? value.trim() : '';
      if (!text) continue;
      if (field.type === 'number') {
        const n = Number(text);
        out[field.name] = Number.isFinite(n) ? n : text; // the server says what is wrong with it
      } else if (field.type === 'datetime') {
        const at = new Date(text); // datetime-local: the local time zone
        out[field.name] = Number.isNaN(at.getTime()) ? text : at.toISOString();
      } else {
        out[field.name] = text;
      }
    }
  }
  return out;
}

/** The values of a stored form, back into the inputs (for 重新提交). */
function rawValues(fields: FormField[], form: Record<string, unknown>, wf: WorkflowModel): RawValues {
  const out: RawValues = {};
  for (const field of fields) {
    const value = form[field.name];
    if (value === undefined || value === null) continue;
    if (field.type === 'user') out[field.name] = [{ kind: 'user', id: String(value), name: wf.nameOf(String(value)) || String(value) }];
    else if (field.type === 'file') out[field.name] = { file_id: String(value), name: field.label, size: -1 };
    else if (field.type === 'datetime') {
      const at = new Date(String(value));
      out[field.name] = Number.isNaN(at.getTime()) ? String(value) : localInputValue(at);
    } else out[field.name] = String(value);
  }
  return out;
}

function fieldMessage(message: unknown): string {
  const text = typeof message === 'string' ? message : '';
  if (!text || text === 'required') return t('wf.err.required');
  if (text === 'unknown field') return t('wf.err.unknown');
  const m = /^must be an? (\w+)/.exec(text);
  if (m) return t('wf.err.type', { type: label(`wf.type.${m[1]}`, m[1]) });
  return text;
}

/** bad_request details by form field (`form.days` → `days`, `picked`), and what is left. */
function fieldErrors(error: ApiError | null): { byField: Record<string, string>; rest: ApiError | null } {
  if (!error) return { byField: {}, rest: null };
  // details is {fields: [{field, message?}]} (server/errors.py); a bare list is taken too.
  const raw = error.details as { fields?: unknown } | unknown[] | null;
  const list = Array.isArray(raw) ? raw : Array.isArray(raw?.fields) ? raw.fields : null;
  if (error.code !== 'bad_request' || !list) return { byField: {}, rest: error };
  const byField: Record<string, string> = {};
  const left: unknown[] = [];
  for (const d of list as { field?: unknown; message?: unknown }[]) {
    const field = typeof d?.field === 'string' ? d.field : '';
    if (field.startsWith('form.')) byField[field.slice(5)] = fieldMessage(d.message);
    else if (field === 'picked') byField.picked = d.message ? fieldMessage(d.message) : error.message;
    else left.push(d);
  }
  // The field problems are shown beside their fields; the summary says where to look.
  const marked = Object.keys(byField).length > 0;
  const rest = new ApiError(
    { code: error.code, message: marked ? t('wf.err.check_fields') : error.message, details: left.length ? left : undefined },
    error.status,
  );
  return { byField, rest };
}

function FieldError({ name, text }: { name: string; text?: string }) {
  if (!text) return null;
  return html`<div class="wf-field-error" role="alert" data-testid=${`wf-field-error-${name}`}>${text}</div>`;
}

function FileField(props: {
  field: FormField;
  value: FileInfo | null;
  onChange: (file: FileInfo | null) => void;
  onBusy: (busy: boolean) => void;
}) {
  const { field } = props;
  const uploads = useUploads();
  const prefix = `wf-file-${field.name}`;
  const last = uploads.files[uploads.files.length - 1] ?? null;
  useEffect(() => {
    if (last) props.onChange(last);
  }, [last?.file_id]);
  useEffect(() => props.onBusy(uploads.uploading || uploads.failed), [uploads.uploading, uploads.failed]);
  // One file per field: a new one replaces the old.
  const single: Uploads = {
    ...uploads,
    attach(files) {
      uploads.list.forEach((u) => uploads.remove(u));
      uploads.attach(files);
    },
    remove(u) {
      uploads.remove(u);
      props.onChange(null);
    },
  };
  const kept = props.value && uploads.list.length === 0 ? props.value : null;
  return html`<div class="wf-file-field">
    ${kept
      ? html`<span class="pager-chip" data-testid=${`${prefix}-kept`}>
          📎 ${kept.name || kept.file_id}
          <button type="button" class="pager-chip-x" title=${t('pager.remove')} onClick=${() => props.onChange(null)}>×</button>
        </span>`
      : null}
    <${UploadList} uploads=${single} prefix=${prefix} />
    <div><${AttachButton} uploads=${single} prefix=${prefix} /></div>
  </div>`;
}

function FieldInput(props: {
  field: FormField;
  value: RawValue;
  invalid: boolean;
  people: PagerModel;
  wf: WorkflowModel;
  onChange: (value: RawValue) => void;
  onBusy: (busy: boolean) => void;
}) {
  const { field, value, invalid } = props;
  const id = `wf-field-${field.name}`;
  const text = typeof value === 'string' ? value : '';
  const common = {
    id,
    'data-testid': id,
    name: field.name,
    'aria-invalid': invalid ? 'true' : undefined,
    required: field.required,
    class: invalid ? 'invalid' : undefined,
  };
  switch (field.type) {
    case 'number':
      return html`<input type="number" step="any" ...${common} value=${text} onInput=${(e: Event) => props.onChange(inputValue(e))} />`;
    case 'date':
      return html`<input type="date" ...${common} value=${text} onInput=${(e: Event) => props.onChange(inputValue(e))} />`;
    case 'datetime':
      return html`<input type="datetime-local" ...${common} value=${text} onInput=${(e: Event) => props.onChange(inputValue(e))} />`;
    case 'user':
      return html`<${PersonPicker}
        people=${props.people}
        memory=${props.wf}
        prefix=${id}
        label=""
        chosen=${Array.isArray(value) ? value : []}
        onChange=${(r: Recipient[]) => props.onChange(r)}
      />`;
    case 'file':
      return html`<${FileField}
        field=${field}
        value=${value && typeof value === 'object' && !Array.isArray(value) ? value : null}
        onChange=${(f: FileInfo | null) => props.onChange(f)}
        onBusy=${props.onBusy}
      />`;
    default:
      return isLongText(field)
        ? html`<textarea rows="3" maxlength="2000" ...${common} value=${text} onInput=${(e: Event) => props.onChange(inputValue(e))}></textarea>`
        : html`<input type="text" maxlength="2000" ...${common} value=${text} onInput=${(e: Event) => props.onChange(inputValue(e))} />`;
  }
}

/** The definition's fields, each by its type, with the server's complaints beside them. */
function FormFields(props: {
  fields: FormField[];
  values: RawValues;
  errors: Record<string, string>;
  people: PagerModel;
  wf: WorkflowModel;
  onChange: (name: string, value: RawValue) => void;
  onBusy: (name: string, busy: boolean) => void;
}) {
  return html`<div class="wf-form-grid">
    ${props.fields.map((field) => {
      const wide = field.type === 'user' || field.type === 'file' || (field.type === 'text' && isLongText(field));
      const labelText = html`<span class="field-label">${field.label}${field.required ? html`<span class="wf-required" aria-hidden="true"> *</span>` : null}</span>`;
      const input = html`<${FieldInput}
        field=${field}
        value=${props.values[field.name] ?? null}
        invalid=${Boolean(props.errors[field.name])}
        people=${props.people}
        wf=${props.wf}
        onChange=${(v: RawValue) => props.onChange(field.name, v)}
        onBusy=${(busy: boolean) => props.onBusy(field.name, busy)}
      />`;
      // A picker brings its own label-less field; the others sit in a <label>.
      return field.type === 'user' || field.type === 'file'
        ? html`<div key=${field.name} class=${`field wf-field${wide ? ' wide' : ''}`} data-field=${field.name}>
            ${labelText} ${input}
            <${FieldError} name=${field.name} text=${props.errors[field.name]} />
          </div>`
        : html`<label key=${field.name} class=${`field wf-field${wide ? ' wide' : ''}`} data-field=${field.name}>
            ${labelText} ${input}
            <${FieldError} name=${field.name} text=${props.errors[field.name]} />
          </label>`;
    })}
  </div>`;
}

/** The steps whose approvers the applicant picks. */
function pickedSteps(d: Definition | undefined): StepDef[] {
  return (d?.steps ?? []).filter((s) => s.approvers?.kind === 'picked');
}

/** "直接上级审批 → 部门负责人审批（天数 > 3 时）" */
function RouteLine({ d }: { d: Definition }) {
  return html`<ol class="wf-route" data-testid="wf-route">
    ${d.steps.map((s, i) => {
      const field = s.when ? (d.form.find((f) => f.name === s.when!.field)?.label ?? s.when.field) : '';
      const value = s.when ? (Array.isArray(s.when.value) ? s.when.value.join('、') : String(s.when.value)) : '';
      return html`<li key=${i}>
        <span class="wf-route-name">${s.name}</span>
        ${s.name.startsWith(approversLabel(s)) ? null : html`<span class="muted small">${approversLabel(s)}</span>`}
        ${s.when ? html`<span class="wf-route-when small">${t('wf.route.when', { field, op: opLabel(s.when.op), value })}</span>` : null}
      </li>`;
    })}
  </ol>`;
}

function opLabel(op: WhenOp): string {
  return label(`wf.op.${op}`, op);
}

function approversLabel(s: StepDef): string {
  const a = s.approvers ?? { kind: 'supervisor' };
  const kind = label(`wf.kind.${a.kind}`, a.kind);
  if (a.kind === 'supervisor' && (a.level ?? 1) > 1) return t('wf.kind.supervisor_n', { n: a.level ?? 1 });
  if (a.kind === 'role' && a.role) return `${kind}：${a.role}`;
  return kind;
}

/** The form of one definition; keyed by the definition, so picking another starts afresh. */
function StartForm({ ctx, d }: { ctx: AppContext; d: Definition }) {
  const wf = ctx.workflow;
  const [values, setValues] = useState<RawValues>({});
  const [picked, setPicked] = useState<Recipient[]>([]);
  const [busyFields, setBusyFields] = useState<Record<string, boolean>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  // One key per request written: a retry after a failure or timeout reuses it.
  const clientMsgId = useRef(newClientMsgId());
  const { byField, rest } = fieldErrors(error);
  const picking = pickedSteps(d);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (Object.values(busyFields).some(Boolean)) return setError(badRequest(t('pager.wait_uploads')));
    setBusy(true);
    setError(null);
    try {
      await wf.start(d.key, formPayload(d.form, values), picked.map((p) => p.id), clientMsgId.current);
      clientMsgId.current = newClientMsgId();
      toast(t('wf.started', { name: d.name }), 'success');
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(false);
    }
  };

  return html`<form class="form wf-form" data-testid=${`wf-form-${d.key}`} onSubmit=${submit} novalidate>
    <div class="wf-route-wrap">
      <span class="field-label">${t('wf.route')}</span>
      <${RouteLine} d=${d} />
    </div>
    <${FormFields}
      fields=${d.form}
      values=${values}
      errors=${byField}
      people=${ctx.pager}
      wf=${wf}
      onChange=${(name: string, v: RawValue) => setValues((all) => ({ ...all, [name]: v }))}
      onBusy=${(name: string, b: boolean) => setBusyFields((all) => (all[name] === b ? all : { ...all, [name]: b }))}
    />
    ${picking.length
      ? html`<div class="wf-picked">
          <${PersonPicker}
            people=${ctx.pager}
            memory=${wf}
            prefix="wf-picked"
            label=${t('wf.picked', { steps: picking.map((s) => s.name).join('、') })}
            chosen=${picked}
            multiple=${true}
            onChange=${setPicked}
          />
          <${FieldError} name="picked" text=${byField.picked} />
        </div>`
      : null}
    <div class="pager-compose-tools">
      <span class="pager-hint muted small">${t('wf.required_hint')}</span>
      <button type="button" class="btn" onClick=${() => wf.close()}>${t('circ.cancel')}</button>
      <button type="submit" class="btn btn-primary" data-testid="wf-submit" disabled=${busy}>
        ${busy ? t('wf.submitting') : t('wf.submit')}
      </button>
    </div>
    <${ErrorNote} error=${rest} testid="wf-start-error" />
  </form>`;
}

function StartView({ ctx, initialKey }: { ctx: AppContext; initialKey: string | null }) {
  const wf = ctx.workflow;
  const definitions = useStore(wf.definitions);
  const defsError = useStore(wf.definitionsError);
  const [key, setKey] = useState<string | null>(initialKey);
  useEffect(() => setKey(initialKey), [initialKey]);
  const d = key ? definitions.find((x) => x.key === key) : undefined;
  return html`<section class="card wf-start" data-testid="wf-start" aria-labelledby="wf-start-title">
    <div class="card-header">
      <h2 id="wf-start-title">${d ? t('wf.start_title', { name: d.name }) : t('wf.new')}</h2>
      <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => wf.close()}>×</button>
    </div>
    <div class="wf-def-picker" role="group" aria-label=${t('wf.pick_def')}>
      ${definitions.map(
        (x) => html`<button
          key=${x.key}
          type="button"
          class=${`chip${x.key === key ? ' chip-on' : ''}`}
          aria-pressed=${x.key === key}
          data-testid=${`wf-def-${x.key}`}
          onClick=${() => setKey(x.key)}
        >
          ${x.name}
        </button>`,
      )}
    </div>
    <${ErrorNote} error=${defsError} testid="wf-defs-error" />
    ${d
      ? html`<${StartForm} key=${`${d.key}-${d.version}`} ctx=${ctx} d=${d} />`
      : html`<div class="empty">${definitions.length ? t('wf.pick_def') : t('board.loading')}</div>`}
  </section>`;
}

// --- one request: the step view ------------------------------------------------------------------

type StepStatus = 'done' | 'current' | 'rejected' | 'returned' | 'skipped' | 'cancelled' | 'not_needed' | 'pending';

interface StepRow {
  name: string;
  status: StepStatus;
  tasks: WfTask[];
}

/** Each step of the current round: its tasks and how it stands. */
function stepRows(inst: Instance): StepRow[] {
  const round = inst.tasks.reduce((r, task) => Math.max(r, task.round), 0);
  let from = 0;
  inst.trail.forEach((e, i) => {
    if (e.action === 'start' || e.action === 'resubmit') from = i;
  });
  const roundTrail = inst.trail.slice(from);
  const current = inst.steps.indexOf(inst.step);
  return inst.steps.map((name, index) => {
    const tasks = inst.tasks.filter((task) => task.step === name && task.round === round);
    const has = (s: TaskState) => tasks.some((task) => task.state === s);
    let status: StepStatus;
    if (has('open')) status = 'current';
    else if (has('rejected')) status = 'rejected';
    else if (has('returned')) status = 'returned';
    else if (has('approved')) status = 'done';
    else if (roundTrail.some((e) => e.action === 'skip' && e.step === name)) status = 'skipped';
    else if (tasks.length > 0) status = 'cancelled';
    else if (inst.state === 'approved' || (current >= 0 && index < current)) status = 'not_needed';
    else status = 'pending';
    return { name, status, tasks };
  });
}

const STEP_ICON: Record<StepStatus, string> = {
  done: '✓',
  current: '…',
  rejected: '✕',
  returned: '↩',
  skipped: '»',
  cancelled: '–',
  not_needed: '–',
  pending: '',
};

function TaskLine({ task }: { task: WfTask }) {
  return html`<li class=${`wf-task wf-task-row-${task.state}`} data-testid=${`wf-task-${task.task_id}`} data-state=${task.state}>
    <div class="wf-task-head">
      <span class="wf-task-who">${personLabel(task.assignee, task.on_behalf_of)}</span>
      <${TaskBadge} state=${task.state} />
      ${task.acted_at ? html`<span class="muted small"><${Time} iso=${task.acted_at} /></span>` : null}
    </div>
    ${task.comment ? html`<div class="wf-comment" data-testid=${`wf-task-comment-${task.task_id}`}>${task.comment}</div>` : null}
  </li>`;
}

function Steps({ inst }: { inst: Instance }) {
  const rows = stepRows(inst);
  const submitted = [...inst.trail].reverse().find((e) => e.action === 'start' || e.action === 'resubmit');
  const finished = inst.state !== 'running';
  return html`<ol class="wf-steps" data-testid="wf-steps" data-state=${inst.state}>
    <li class="wf-step wf-step-done" data-testid="wf-step-submit" data-status="done">
      <span class="wf-step-dot" aria-hidden="true">✓</span>
      <div class="wf-step-body">
        <div class="wf-step-head">
          <strong>${submitted?.action === 'resubmit' ? t('wf.action.resubmit') : t('wf.action.start')}</strong>
          <span class="muted small">${inst.applicant.name} · <${Time} iso=${submitted?.at ?? inst.created_at} /></span>
        </div>
      </div>
    </li>
    ${rows.map(
      (row, i) => html`<li key=${i} class=${`wf-step wf-step-${row.status}`} data-testid=${`wf-step-${i}`} data-status=${row.status}>
        <span class="wf-step-dot" aria-hidden="true">${STEP_ICON[row.status] || String(i + 1)}</span>
        <div class="wf-step-body">
          <div class="wf-step-head">
            <strong>${row.name}</strong>
            <span class=${`wf-step-status wf-step-status-${row.status}`}>${t(`wf.step.${row.status}` as MessageKey)}</span>
          </div>
          ${row.tasks.length ? html`<ul class="wf-tasks">${row.tasks.map((task) => html`<${TaskLine} key=${task.task_id} task=${task} />`)}</ul>` : null}
        </div>
      </li>`,
    )}
    <li class=${`wf-step wf-step-end wf-end-${inst.state}`} data-testid="wf-step-end" data-status=${finished ? inst.state : 'pending'}>
      <span class="wf-step-dot" aria-hidden="true">${inst.state === 'approved' ? '✓' : finished ? '■' : ''}</span>
      <div class="wf-step-body">
        <div class="wf-step-head">
          <strong>${finished ? stateLabel(inst.state) : t('wf.step.end')}</strong>
          ${inst.finished_at ? html`<span class="muted small"><${Time} iso=${inst.finished_at} /></span>` : null}
        </div>
      </div>
    </li>
  </ol>`;
}

function Trail({ inst }: { inst: Instance }) {
  return html`<table class="pager-receipts-table wf-trail" data-testid="wf-trail">
    <thead>
      <tr>
        <th>${t('wf.col.time')}</th>
        <th>${t('wf.col.actor')}</th>
        <th>${t('wf.col.action')}</th>
        <th>${t('wf.col.step')}</th>
        <th>${t('wf.col.comment')}</th>
      </tr>
    </thead>
    <tbody>
      ${inst.trail.map(
        (e) => html`<tr key=${e.seq} data-testid=${`wf-trail-${e.seq}`} data-action=${e.action}>
          <td class="wf-nowrap"><${Time} iso=${e.at} /></td>
          <td class="wf-nowrap">${personLabel(e.actor, e.on_behalf_of)}</td>
          <td class="wf-nowrap"><span class=${`wf-action wf-action-${e.action}`}>${actionLabel(e.action)}</span></td>
          <td class="wf-nowrap muted">${e.action === 'start' || e.action === 'resubmit' ? '' : e.step}</td>
          <td class="wf-trail-comment">${e.comment || html`<span class="muted">—</span>`}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function FormValue({ wf, field, value }: { wf: WorkflowModel; field: FormField | undefined; value: unknown }) {
  const names = useStore(wf.names);
  const [error, setError] = useState<ApiError | null>(null);
  const text = String(value);
  switch (field?.type) {
    case 'datetime':
      return html`<${Time} iso=${text} />`;
    case 'user':
      return html`<span>${names[text] || text}</span>`;
    case 'file':
      return html`<span>
        <button
          type="button"
          class="pager-file"
          data-testid=${`wf-download-${field.name}`}
          onClick=${async () => {
            setError(null);
            try {
              await downloadFile({ file_id: text, name: field.label, size: -1 });
            } catch (err) {
              setError(ApiError.from(err));
            }
          }}
        >
          📎 ${field.label}
        </button>
        <${ErrorNote} error=${error} />
      </span>`;
    default:
      return html`<span class="wf-value-text">${text}</span>`;
  }
}

function FormValues({ wf, inst }: { wf: WorkflowModel; inst: Instance }) {
  const d = wf.definition(inst.key);
  const fields = d?.form ?? [];
  const names = [...fields.map((f) => f.name).filter((n) => n in inst.form), ...Object.keys(inst.form).filter((n) => !fields.some((f) => f.name === n))];
  useEffect(() => {
    const ids = fields.filter((f) => f.type === 'user' && inst.form[f.name]).map((f) => String(inst.form[f.name]));
    if (ids.length) void wf.resolveNames(ids);
  }, [inst.instance_id, fields.length]);
  return html`<dl class="wf-values" data-testid="wf-values">
    ${names.map((name) => {
      const field = fields.find((f) => f.name === name);
      return html`<div key=${name} class="wf-value" data-field=${name}>
        <dt>${field?.label ?? name}</dt>
        <dd><${FormValue} wf=${wf} field=${field} value=${inst.form[name]} /></dd>
      </div>`;
    })}
  </dl>`;
}

function UrgeButton({ wf, id }: { wf: WorkflowModel; id: Id }) {
  const allowedAt = useStore(wf.urgeAllowedAt)[id] ?? null;
  const now = useNow(allowedAt);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const wait = allowedAt ? Date.parse(allowedAt) - now : 0;
  const urge = async () => {
    setBusy(true);
    setError(null);
    try {
      const { urged, texted } = await wf.urge(id);
      toast(texted > 0 ? t('wf.urged_sms', { n: urged, sms: texted }) : t('wf.urged', { n: urged }), 'success');
    } catch (err) {
      const e = ApiError.from(err);
      if (e.code !== 'rate_limited') setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="wf-urge-wrap">
    <button type="button" class="btn btn-small" data-testid="wf-urge" data-allowed-at=${allowedAt ?? ''} disabled=${busy || wait > 0} onClick=${urge}>
      🔔 ${busy ? t('wf.urging') : t('wf.urge')}
    </button>
    ${wait > 0
      ? html`<span class="wf-wait small" data-testid="wf-urge-wait">${t('wf.urge_wait', { time: countdown(wait) })}</span>`
      : null}
    <${ErrorNote} error=${error} testid="wf-urge-error" />
  </span>`;
}

function ApplicantActions({ ctx, inst, onResubmit, resubmitting }: { ctx: AppContext; inst: Instance; onResubmit: () => void; resubmitting: boolean }) {
  const wf = ctx.workflow;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const end = typeof inst.form.end === 'string' ? Date.parse(inst.form.end) : NaN;
  // An approved leave or trip may still be taken back (销假) until it ends.
  const cancelsLeave = inst.state === 'approved' && (inst.key === 'leave' || inst.key === 'trip') && end > Date.now();
  const canWithdraw = inst.state === 'running' || inst.state === 'returned' || cancelsLeave;
  if (!canWithdraw) return null;
  const withdraw = async () => {
    if (!window.confirm(cancelsLeave ? t('wf.withdraw_approved_confirm', { title: inst.title }) : t('wf.withdraw_confirm', { title: inst.title }))) return;
    setBusy(true);
    setError(null);
    try {
      await wf.withdraw(inst.instance_id);
      toast(t('wf.withdrawn'), 'success');
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="wf-actions" data-testid="wf-applicant-actions">
    ${inst.state === 'returned'
      ? html`<button type="button" class=${`btn btn-small${resubmitting ? '' : ' btn-primary'}`} data-testid="wf-resubmit" onClick=${onResubmit}>
          ↻ ${t('wf.resubmit')}
        </button>`
      : null}
    ${inst.state === 'running' ? html`<${UrgeButton} wf=${wf} id=${inst.instance_id} />` : null}
    <button type="button" class="btn btn-small btn-ghost wf-withdraw" data-testid="wf-withdraw" disabled=${busy} onClick=${withdraw}>
      ↩ ${cancelsLeave ? t('wf.withdraw_leave') : t('wf.withdraw')}
    </button>
    <${ErrorNote} error=${error} testid="wf-withdraw-error" />
  </div>`;
}

function ResubmitForm({ ctx, inst, onDone }: { ctx: AppContext; inst: Instance; onDone: () => void }) {
  const wf = ctx.workflow;
  const fields = wf.definition(inst.key)?.form ?? [];
  const [values, setValues] = useState<RawValues>(() => rawValues(fields, inst.form, wf));
  const [busyFields, setBusyFields] = useState<Record<string, boolean>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const { byField, rest } = fieldErrors(error);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (Object.values(busyFields).some(Boolean)) return setError(badRequest(t('pager.wait_uploads')));
    setBusy(true);
    setError(null);
    try {
      await wf.resubmit(inst.instance_id, fields.length ? formPayload(fields, values) : null);
      toast(t('wf.resubmitted'), 'success');
      onDone();
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="form wf-resubmit-form" data-testid="wf-resubmit-form" onSubmit=${submit} novalidate>
    <h3>${t('wf.resubmit_title')}</h3>
    <${FormFields}
      fields=${fields}
      values=${values}
      errors=${byField}
      people=${ctx.pager}
      wf=${wf}
      onChange=${(name: string, v: RawValue) => setValues((all) => ({ ...all, [name]: v }))}
      onBusy=${(name: string, b: boolean) => setBusyFields((all) => (all[name] === b ? all : { ...all, [name]: b }))}
    />
    <div class="pager-compose-tools">
      <span class="pager-hint"></span>
      <button type="button" class="btn" onClick=${onDone}>${t('circ.cancel')}</button>
      <button type="submit" class="btn btn-primary" data-testid="wf-resubmit-submit" disabled=${busy}>
        ${busy ? t('wf.submitting') : t('wf.resubmit')}
      </button>
    </div>
    <${ErrorNote} error=${rest} testid="wf-resubmit-error" />
  </form>`;
}

/** The approver's box: a comment, and 同意 / 退回 / 驳回 / 转交. */
function ActBox({ ctx, inst, task }: { ctx: AppContext; inst: Instance; task: WfTask }) {
  const wf = ctx.workflow;
  const [comment, setComment] = useState('');
  const [transferring, setTransferring] = useState(false);
  const [to, setTo] = useState<Recipient[]>([]);
  const [busy, setBusy] = useState<ActAction | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const forOther = task.on_behalf_of && task.assignee.id === wf.me.id ? task.on_behalf_of : null;
  const act = async (action: ActAction) => {
    if (action === 'transfer' && to.length === 0) return setError(badRequest(t('wf.need_transfer_to')));
    if (action === 'reject' && !window.confirm(t('wf.reject_confirm', { title: inst.title }))) return;
    setBusy(action);
    setError(null);
    try {
      await wf.act(task.task_id, action, comment.trim(), action === 'transfer' ? to[0].id : null);
      toast(
        action === 'transfer' ? t('wf.acted.transfer', { name: to[0].name }) : t(`wf.acted.${action}` as MessageKey, { title: inst.title }),
        'success',
      );
    } catch (err) {
      setError(ApiError.from(err));
      setBusy(null);
    }
  };
  return html`<form class="wf-act" data-testid="wf-act" data-task-id=${task.task_id} onSubmit=${(e: Event) => e.preventDefault()}>
    <div class="wf-act-head">
      <h3>${t('wf.act_title', { step: task.step })}</h3>
      ${forOther ? html`<span class="wf-behalf-note">${t('wf.act_for', { name: forOther.name })}</span>` : null}
    </div>
    <label class="field">
      <span class="field-label">${t('wf.comment')}</span>
      <textarea
        rows="2"
        maxlength="1000"
        data-testid="wf-act-comment"
        placeholder=${t('wf.comment_placeholder')}
        value=${comment}
        onInput=${(e: Event) => setComment(inputValue(e))}
      ></textarea>
    </label>
    ${transferring
      ? html`<div class="wf-transfer">
          <${PersonPicker} people=${ctx.pager} memory=${wf} prefix="wf-transfer" label=${t('wf.transfer_to')} chosen=${to} onChange=${setTo} />
        </div>`
      : null}
    <div class="wf-act-buttons">
      ${transferring
        ? html`<button type="button" class="btn btn-primary" data-testid="wf-transfer-confirm" disabled=${busy !== null} onClick=${() => act('transfer')}>
              ⇢ ${busy === 'transfer' ? t('wf.working') : t('wf.transfer_confirm')}
            </button>
            <button type="button" class="btn" onClick=${() => setTransferring(false)}>${t('circ.cancel')}</button>`
        : html`<button type="button" class="btn btn-primary" data-testid="wf-approve" disabled=${busy !== null} onClick=${() => act('approve')}>
              ✓ ${busy === 'approve' ? t('wf.working') : t('wf.approve')}
            </button>
            <button type="button" class="btn" data-testid="wf-return" disabled=${busy !== null} onClick=${() => act('return')}>
              ↩ ${t('wf.return')}
            </button>
            <button type="button" class="btn btn-danger-ghost" data-testid="wf-reject" disabled=${busy !== null} onClick=${() => act('reject')}>
              ✕ ${t('wf.reject')}
            </button>
            <button type="button" class="btn btn-ghost" data-testid="wf-transfer" disabled=${busy !== null} onClick=${() => setTransferring(true)}>
              ⇢ ${t('wf.transfer')}…
            </button>`}
    </div>
    <${ErrorNote} error=${error} testid="wf-act-error" />
  </form>`;
}

function Detail({ ctx, id }: { ctx: AppContext; id: Id }) {
  const wf = ctx.workflow;
  const opened = useStore(wf.opened);
  useStore(wf.definitions);
  const [resubmitting, setResubmitting] = useState(false);
  useEffect(() => setResubmitting(false), [id]);
  const inst = opened?.id === id ? opened.instance : null;
  useEffect(() => {
    if (inst && inst.state !== 'returned') setResubmitting(false);
  }, [inst?.state]);
  const header = (title: string, state: InstanceState | null) => html`<div class="card-header">
    <h2 class="wf-title-text">${title} ${state ? html`<${StateBadge} state=${state} testid="wf-state" />` : null}</h2>
    <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => wf.close()}>×</button>
  </div>`;
  if (!inst) {
    return html`<section class="card wf-detail" data-testid=${`wf-detail-${id}`}>
      ${header(wf.find(id)?.title ?? '', null)}
      <${ErrorNote} error=${opened?.error ?? null} testid="wf-detail-error" />
      ${opened?.loading ? html`<div class="empty">${t('board.loading')}</div>` : null}
    </section>`;
  }
  const mine = inst.applicant.id === wf.me.id;
  const task = actionableTask(inst, wf.me.id);
  const d = wf.definition(inst.key);
  return html`<section class=${`card wf-detail wf-detail-${inst.state}`} data-testid=${`wf-detail-${id}`} data-state=${inst.state}>
    ${header(inst.title, inst.state)}
    <div class="circ-meta wf-meta">
      <span class="wf-def-tag">${d?.name ?? inst.key}${inst.version > 1 ? ` · ${t('wf.version', { n: inst.version })}` : ''}</span>
      <span>${t('wf.applicant', { name: inst.applicant.name })}</span>
      ${inst.created_at ? html`<span class="muted">${t('wf.submitted_at')} <${Time} iso=${inst.created_at} /></span>` : null}
      ${inst.state === 'running' && inst.step ? html`<span class="muted">${t('wf.now_at', { step: inst.step })}</span>` : null}
    </div>
    ${mine ? html`<${ApplicantActions} ctx=${ctx} inst=${inst} resubmitting=${resubmitting} onResubmit=${() => setResubmitting((v) => !v)} />` : null}
    ${mine && resubmitting && inst.state === 'returned' ? html`<${ResubmitForm} ctx=${ctx} inst=${inst} onDone=${() => setResubmitting(false)} />` : null}
    ${task ? html`<${ActBox} key=${task.task_id} ctx=${ctx} inst=${inst} task=${task} />` : null}
    <div class="wf-detail-grid">
      <div>
        <h3 class="wf-section">${t('wf.form')}</h3>
        <${FormValues} wf=${wf} inst=${inst} />
      </div>
      <div>
        <h3 class="wf-section">${t('wf.progress')}</h3>
        <${Steps} inst=${inst} />
      </div>
    </div>
    <h3 class="wf-section">${t('wf.trail')}</h3>
    <${Trail} inst=${inst} />
  </section>`;
}

// --- delegation (代签) ----------------------------------------------------------------------------

function delegationStatus(d: Delegation, now = Date.now()): 'revoked' | 'active' | 'upcoming' | 'ended' {
  if (d.revoked_at) return 'revoked';
  if (Date.parse(d.ends_at) <= now) return 'ended';
  if (d.active) return 'active';
  return Date.parse(d.starts_at) > now ? 'upcoming' : 'active';
}

function DelegationView({ ctx }: { ctx: AppContext }) {
  const wf = ctx.workflow;
  const list = useStore(wf.delegations);
  const definitions = useStore(wf.definitions);
  const names = useStore(wf.names);
  const [to, setTo] = useState<Recipient[]>([]);
  const [starts, setStarts] = useState('');
  const [ends, setEnds] = useState('');
  const [keys, setKeys] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [revoking, setRevoking] = useState<Id | null>(null);
  const [listError, setListError] = useState<ApiError | null>(null);

  const grant = async (e: Event) => {
    e.preventDefault();
    if (to.length === 0) return setError(badRequest(t('wf.deleg.need_to')));
    if (!ends) return setError(badRequest(t('wf.deleg.need_end')));
    const endAt = new Date(ends);
    const startAt = starts ? new Date(starts) : null;
    if (Number.isNaN(endAt.getTime()) || endAt.getTime() <= Date.now()) return setError(badRequest(t('wf.deleg.end_past')));
    if (startAt && startAt.getTime() >= endAt.getTime()) return setError(badRequest(t('wf.deleg.end_before_start')));
    setBusy(true);
    setError(null);
    try {
      await wf.grant(to[0].id, endAt.toISOString(), startAt ? startAt.toISOString() : null, keys.length ? keys : null);
      toast(t('wf.deleg.granted', { name: to[0].name }), 'success');
      setTo([]);
      setStarts('');
      setEnds('');
      setKeys([]);
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (d: Delegation) => {
    if (!window.confirm(t('wf.deleg.revoke_confirm', { name: names[d.delegate_id] || d.delegate_id }))) return;
    setRevoking(d.delegation_id);
    setListError(null);
    try {
      await wf.revoke(d.delegation_id);
      toast(t('wf.deleg.revoked'), 'success');
    } catch (err) {
      setListError(ApiError.from(err));
    } finally {
      setRevoking(null);
    }
  };

  const keyNames = (k: string[] | null) => (k && k.length ? k.map((x) => defName(wf, x)).join('、') : t('wf.deleg.all_keys'));
  const who = (id: Id) => (id === wf.me.id ? t('board.me') : names[id] || id);

  return html`<div class="pager-main">
    <section class="card wf-deleg" data-testid="wf-delegation" aria-labelledby="wf-deleg-title">
      <div class="card-header">
        <h2 id="wf-deleg-title">${t('wf.deleg.title')}</h2>
        <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => wf.close()}>×</button>
      </div>
      <p class="muted small wf-intro">${t('wf.deleg.intro')}</p>
      <form class="form" onSubmit=${grant} novalidate>
        <${PersonPicker} people=${ctx.pager} memory=${wf} prefix="wf-deleg" label=${t('wf.deleg.to')} chosen=${to} onChange=${setTo} />
        <div class="wf-two">
          <label class="field">
            <span class="field-label">${t('wf.deleg.starts')}</span>
            <input type="datetime-local" data-testid="wf-deleg-starts" value=${starts} onInput=${(e: Event) => setStarts(inputValue(e))} />
          </label>
          <label class="field">
            <span class="field-label">${t('wf.deleg.ends')}<span class="wf-required" aria-hidden="true"> *</span></span>
            <input
              type="datetime-local"
              data-testid="wf-deleg-ends"
              min=${localInputValue(new Date())}
              value=${ends}
              onInput=${(e: Event) => setEnds(inputValue(e))}
            />
          </label>
        </div>
        <fieldset class="wf-keys">
          <legend class="field-label">${t('wf.deleg.keys')}</legend>
          ${definitions.map(
            (d) => html`<label key=${d.key} class="wf-check">
              <input
                type="checkbox"
                data-testid=${`wf-deleg-key-${d.key}`}
                checked=${keys.includes(d.key)}
                onChange=${(e: Event) => {
                  const on = (e.currentTarget as HTMLInputElement).checked;
                  setKeys((all) => (on ? [...all, d.key] : all.filter((k) => k !== d.key)));
                }}
              />
              ${d.name}
            </label>`,
          )}
        </fieldset>
        <div class="pager-compose-tools">
          <span class="pager-hint"></span>
          <button type="submit" class="btn btn-primary" data-testid="wf-deleg-submit" disabled=${busy}>
            ${busy ? t('wf.working') : t('wf.deleg.grant')}
          </button>
        </div>
        <${ErrorNote} error=${error} testid="wf-deleg-error" />
      </form>
    </section>
    <section class="card" aria-labelledby="wf-deleg-list-title">
      <div class="card-header">
        <h2 id="wf-deleg-list-title">${t('wf.deleg.list')}</h2>
      </div>
      <${ErrorNote} error=${list.error ?? listError} testid="wf-deleg-list-error" />
      ${list.items.length === 0
        ? html`<div class="empty">${list.loading ? t('board.loading') : t('wf.deleg.empty')}</div>`
        : html`<table class="pager-receipts-table" data-testid="wf-deleg-list">
            <thead>
              <tr>
                <th>${t('wf.deleg.col.who')}</th>
                <th>${t('wf.deleg.col.when')}</th>
                <th>${t('wf.deleg.col.keys')}</th>
                <th>${t('wf.deleg.col.state')}</th>
                <th></th>
              </tr>
            </thead>
            <tbody>
              ${list.items.map((d) => {
                const status = delegationStatus(d);
                const mineToGive = d.grantor_id === wf.me.id;
                return html`<tr key=${d.delegation_id} data-testid=${`wf-deleg-${d.delegation_id}`} data-status=${status}>
                  <td class="wf-nowrap">${who(d.grantor_id)} → ${who(d.delegate_id)}</td>
                  <td class="wf-nowrap small"><${Time} iso=${d.starts_at} /> – <${Time} iso=${d.ends_at} /></td>
                  <td class="small">${keyNames(d.keys)}</td>
                  <td><span class=${`wf-badge wf-deleg-${status}`}>${t(`wf.deleg.state.${status}` as MessageKey)}</span></td>
                  <td>
                    ${mineToGive && (status === 'active' || status === 'upcoming')
                      ? html`<button
                          type="button"
                          class="btn btn-small btn-ghost"
                          data-testid=${`wf-deleg-revoke-${d.delegation_id}`}
                          disabled=${revoking === d.delegation_id}
                          onClick=${() => revoke(d)}
                        >
                          ${t('wf.deleg.revoke')}
                        </button>`
                      : null}
                  </td>
                </tr>`;
              })}
            </tbody>
          </table>`}
    </section>
  </div>`;
}

// --- definitions editor (administrators) ------------------------------------------------------

let draftUid = 0;

interface DraftField {
  uid: number;
  name: string;
  label: string;
  type: FieldType;
  required: boolean;
}

interface DraftStep {
  uid: number;
  name: string;
  kind: ApproverKind;
  level: string;
  role: string;
  users: Recipient[];
  mode: StepMode;
  onEmpty: OnEmpty;
  when: boolean;
  whenField: string;
  whenOp: WhenOp;
  whenValue: string;
}

interface Draft {
  key: string;
  name: string;
  fields: DraftField[];
  steps: DraftStep[];
}

function emptyField(): DraftField {
  return { uid: ++draftUid, name: '', label: '', type: 'text', required: false };
}

function emptyStep(): DraftStep {
  return {
    uid: ++draftUid,
    name: '',
    kind: 'supervisor',
    level: '1',
    role: '',
    users: [],
    mode: 'sequential',
    onEmpty: 'skip',
    when: false,
    whenField: '',
    whenOp: 'eq',
    whenValue: '',
  };
}

function toDraft(d: Definition | undefined, nameOf: (id: Id) => string): Draft {
  if (!d) return { key: '', name: '', fields: [emptyField()], steps: [emptyStep()] };
  return {
    key: d.key,
    name: d.name,
    fields: d.form.map((f) => ({ uid: ++draftUid, name: f.name, label: f.label, type: f.type, required: Boolean(f.required) })),
    steps: d.steps.map((s) => ({
      ...emptyStep(),
      name: s.name,
      kind: s.approvers?.kind ?? 'supervisor',
      level: String(s.approvers?.level ?? 1),
      role: s.approvers?.role ?? '',
      users: (s.approvers?.user_ids ?? []).map((id) => ({ kind: 'user' as const, id: String(id), name: nameOf(String(id)) })),
      mode: s.mode ?? 'sequential',
      onEmpty: s.on_empty ?? 'skip',
      when: Boolean(s.when),
      whenField: s.when?.field ?? '',
      whenOp: s.when?.op ?? 'eq',
      whenValue: s.when ? (Array.isArray(s.when.value) ? s.when.value.join(', ') : String(s.when.value)) : '',
    })),
  };
}

/** A condition's value: a number where the field is a number, a list for `in`. */
function whenValue(draft: Draft, step: DraftStep): string | number | (string | number)[] {
  const numeric = draft.fields.find((f) => f.name === step.whenField)?.type === 'number';
  const one = (text: string): string | number => {
    const s = text.trim();
    return numeric && s !== '' && Number.isFinite(Number(s)) ? Number(s) : s;
  };
  if (step.whenOp === 'in') return step.whenValue.split(/[,，、]/).map(one).filter((v) => v !== '');
  return one(step.whenValue);
}

function fromDraft(draft: Draft): Omit<Definition, 'version'> {
  return {
    key: draft.key.trim(),
    name: draft.name.trim(),
    form: draft.fields.map((f) => {
      const field: FormField = { name: f.name.trim(), label: f.label.trim(), type: f.type };
      if (f.required) field.required = true;
      return field;
    }),
    steps: draft.steps.map((s) => {
      const approvers: StepDef['approvers'] = { kind: s.kind };
      if (s.kind === 'supervisor') approvers.level = Math.max(1, Number(s.level) || 1);
      if (s.kind === 'role') approvers.role = s.role.trim();
      if (s.kind === 'users') approvers.user_ids = s.users.map((u) => u.id);
      const step: StepDef = { name: s.name.trim(), approvers, mode: s.mode, on_empty: s.onEmpty };
      if (s.when) step.when = { field: s.whenField, op: s.whenOp, value: whenValue(draft, s) };
      return step;
    }),
  };
}

function move<T>(list: T[], index: number, by: number): T[] {
  const to = index + by;
  if (to < 0 || to >= list.length) return list;
  const next = [...list];
  [next[index], next[to]] = [next[to], next[index]];
  return next;
}

function RowTools({ testid, index, count, onMove, onRemove }: { testid: string; index: number; count: number; onMove: (by: number) => void; onRemove: () => void }) {
  return html`<span class="wf-row-tools">
    <button type="button" class="pager-chip-x" title=${t('wf.define.up')} disabled=${index === 0} onClick=${() => onMove(-1)}>↑</button>
    <button type="button" class="pager-chip-x" title=${t('wf.define.down')} disabled=${index === count - 1} onClick=${() => onMove(1)}>↓</button>
    <button type="button" class="pager-chip-x" title=${t('pager.remove')} data-testid=${`${testid}-remove`} onClick=${onRemove}>×</button>
  </span>`;
}

function DefineView({ ctx }: { ctx: AppContext }) {
  const wf = ctx.workflow;
  const definitions = useStore(wf.definitions);
  useStore(wf.names);
  const [base, setBase] = useState<string>('');
  const [draft, setDraft] = useState<Draft>(() => toDraft(undefined, (id) => wf.nameOf(id)));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const pick = (key: string) => {
    setBase(key);
    setError(null);
    const d = definitions.find((x) => x.key === key);
    setDraft(toDraft(d, (id) => wf.nameOf(id)));
    const ids = (d?.steps ?? []).flatMap((s) => s.approvers?.user_ids ?? []).map(String);
    if (ids.length) void wf.resolveNames(ids);
  };
  // Start from the first definition once they are known (not again after "blank" is chosen).
  const started = useRef(false);
  useEffect(() => {
    if (started.current || definitions.length === 0) return;
    started.current = true;
    pick(definitions[0].key);
  }, [definitions.length]);

  const setField = (uid: number, change: Partial<DraftField>) =>
    setDraft((d) => ({ ...d, fields: d.fields.map((f) => (f.uid === uid ? { ...f, ...change } : f)) }));
  const setStep = (uid: number, change: Partial<DraftStep>) =>
    setDraft((d) => ({ ...d, steps: d.steps.map((s) => (s.uid === uid ? { ...s, ...change } : s)) }));

  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const definition = fromDraft(draft);
      const version = await wf.define(definition);
      toast(t('wf.define.saved', { name: definition.name, version }), 'success');
      setBase(definition.key);
    } catch (err) {
      setError(ApiError.from(err));
    } finally {
      setBusy(false);
    }
  };

  const current = definitions.find((x) => x.key === draft.key.trim());
  const fieldNames = draft.fields.map((f) => f.name.trim()).filter(Boolean);
  return html`<section class="card wf-define" data-testid="wf-define" aria-labelledby="wf-define-title">
    <div class="card-header">
      <h2 id="wf-define-title">${t('wf.define.title')}</h2>
      <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${() => wf.close()}>×</button>
    </div>
    <p class="muted small wf-intro">${t('wf.define.intro')}</p>
    <form class="form" onSubmit=${save} novalidate>
      <div class="wf-three">
        <label class="field">
          <span class="field-label">${t('wf.define.base')}</span>
          <select data-testid="wf-define-base" value=${base} onChange=${(e: Event) => pick((e.currentTarget as HTMLSelectElement).value)}>
            ${definitions.map((d) => html`<option key=${d.key} value=${d.key}>${d.name}（${d.key} · ${t('wf.version', { n: d.version })}）</option>`)}
            <option value="">${t('wf.define.blank')}</option>
          </select>
        </label>
        <label class="field">
          <span class="field-label">${t('wf.define.key')}</span>
          <input type="text" data-testid="wf-define-key" maxlength="40" value=${draft.key} onInput=${(e: Event) => setDraft((d) => ({ ...d, key: inputValue(e) }))} />
        </label>
        <label class="field">
          <span class="field-label">${t('wf.define.name')}</span>
          <input type="text" data-testid="wf-define-name" maxlength="40" value=${draft.name} onInput=${(e: Event) => setDraft((d) => ({ ...d, name: inputValue(e) }))} />
        </label>
      </div>
      <div class="muted small">
        ${current ? t('wf.define.will_be', { n: current.version + 1 }) : draft.key.trim() ? t('wf.define.new_key') : ''}
      </div>

      <h3 class="wf-section">${t('wf.define.fields')}</h3>
      <table class="pager-receipts-table wf-define-table" data-testid="wf-define-fields">
        <thead>
          <tr>
            <th>${t('wf.define.field_name')}</th>
            <th>${t('wf.define.field_label')}</th>
            <th>${t('wf.define.field_type')}</th>
            <th>${t('wf.define.field_required')}</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          ${draft.fields.map(
            (f, i) => html`<tr key=${f.uid} data-testid=${`wf-define-field-${i}`}>
              <td><input type="text" maxlength="40" placeholder="days" data-testid=${`wf-define-field-${i}-name`} value=${f.name} onInput=${(e: Event) => setField(f.uid, { name: inputValue(e) })} /></td>
              <td><input type="text" maxlength="40" placeholder=${t('wf.define.label_placeholder')} data-testid=${`wf-define-field-${i}-label`} value=${f.label} onInput=${(e: Event) => setField(f.uid, { label: inputValue(e) })} /></td>
              <td>
                <select data-testid=${`wf-define-field-${i}-type`} value=${f.type} onChange=${(e: Event) => setField(f.uid, { type: (e.currentTarget as HTMLSelectElement).value as FieldType })}>
                  ${FIELD_TYPES.map((type) => html`<option key=${type} value=${type}>${t(`wf.type.${type}` as MessageKey)}</option>`)}
                </select>
              </td>
              <td class="wf-center">
                <input type="checkbox" data-testid=${`wf-define-field-${i}-required`} checked=${f.required} onChange=${(e: Event) => setField(f.uid, { required: (e.currentTarget as HTMLInputElement).checked })} />
              </td>
              <td class="wf-nowrap">
                <${RowTools}
                  testid=${`wf-define-field-${i}`}
                  index=${i}
                  count=${draft.fields.length}
                  onMove=${(by: number) => setDraft((d) => ({ ...d, fields: move(d.fields, i, by) }))}
                  onRemove=${() => setDraft((d) => ({ ...d, fields: d.fields.filter((x) => x.uid !== f.uid) }))}
                />
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
      <div>
        <button type="button" class="btn btn-small btn-ghost" data-testid="wf-define-add-field" onClick=${() => setDraft((d) => ({ ...d, fields: [...d.fields, emptyField()] }))}>
          ＋ ${t('wf.define.add_field')}
        </button>
      </div>

      <h3 class="wf-section">${t('wf.define.steps')}</h3>
      <ol class="wf-define-steps">
        ${draft.steps.map(
          (s, i) => html`<li key=${s.uid} class="wf-define-step" data-testid=${`wf-define-step-${i}`}>
            <div class="wf-define-step-head">
              <span class="wf-step-dot" aria-hidden="true">${i + 1}</span>
              <input
                type="text"
                class="wf-define-step-name"
                data-testid=${`wf-define-step-${i}-name`}
                maxlength="40"
                placeholder=${t('wf.define.step_name')}
                value=${s.name}
                onInput=${(e: Event) => setStep(s.uid, { name: inputValue(e) })}
              />
              <${RowTools}
                testid=${`wf-define-step-${i}`}
                index=${i}
                count=${draft.steps.length}
                onMove=${(by: number) => setDraft((d) => ({ ...d, steps: move(d.steps, i, by) }))}
                onRemove=${() => setDraft((d) => ({ ...d, steps: d.steps.filter((x) => x.uid !== s.uid) }))}
              />
            </div>
            <div class="wf-three">
              <label class="field">
                <span class="field-label">${t('wf.define.approvers')}</span>
                <select data-testid=${`wf-define-step-${i}-kind`} value=${s.kind} onChange=${(e: Event) => setStep(s.uid, { kind: (e.currentTarget as HTMLSelectElement).value as ApproverKind })}>
                  ${APPROVER_KINDS.map((k) => html`<option key=${k} value=${k}>${t(`wf.kind.${k}` as MessageKey)}</option>`)}
                </select>
              </label>
              <label class="field">
                <span class="field-label">${t('wf.define.mode')}</span>
                <select data-testid=${`wf-define-step-${i}-mode`} value=${s.mode} onChange=${(e: Event) => setStep(s.uid, { mode: (e.currentTarget as HTMLSelectElement).value as StepMode })}>
                  ${STEP_MODES.map((m) => html`<option key=${m} value=${m}>${t(`wf.mode.${m}` as MessageKey)}</option>`)}
                </select>
              </label>
              <label class="field">
                <span class="field-label">${t('wf.define.on_empty')}</span>
                <select data-testid=${`wf-define-step-${i}-on-empty`} value=${s.onEmpty} onChange=${(e: Event) => setStep(s.uid, { onEmpty: (e.currentTarget as HTMLSelectElement).value as OnEmpty })}>
                  <option value="skip">${t('wf.on_empty.skip')}</option>
                  <option value="admin">${t('wf.on_empty.admin')}</option>
                </select>
              </label>
            </div>
            ${s.kind === 'supervisor'
              ? html`<label class="field wf-narrow">
                  <span class="field-label">${t('wf.define.level')}</span>
                  <input type="number" min="1" max="5" step="1" data-testid=${`wf-define-step-${i}-level`} value=${s.level} onInput=${(e: Event) => setStep(s.uid, { level: inputValue(e) })} />
                </label>`
              : s.kind === 'role'
                ? html`<label class="field wf-narrow">
                    <span class="field-label">${t('wf.define.role')}</span>
                    <input type="text" maxlength="40" placeholder="finance" data-testid=${`wf-define-step-${i}-role`} value=${s.role} onInput=${(e: Event) => setStep(s.uid, { role: inputValue(e) })} />
                  </label>`
                : s.kind === 'users'
                  ? html`<${PersonPicker}
                      people=${ctx.pager}
                      memory=${wf}
                      prefix=${`wf-define-users-${i}`}
                      label=${t('wf.define.users')}
                      chosen=${s.users}
                      multiple=${true}
                      onChange=${(users: Recipient[]) => setStep(s.uid, { users })}
                    />`
                  : null}
            <div class="wf-when">
              <label class="wf-check">
                <input type="checkbox" data-testid=${`wf-define-step-${i}-when`} checked=${s.when} onChange=${(e: Event) => setStep(s.uid, { when: (e.currentTarget as HTMLInputElement).checked, whenField: s.whenField || fieldNames[0] || '' })} />
                ${t('wf.define.when')}
              </label>
              ${s.when
                ? html`<select data-testid=${`wf-define-step-${i}-when-field`} value=${s.whenField} onChange=${(e: Event) => setStep(s.uid, { whenField: (e.currentTarget as HTMLSelectElement).value })}>
                      ${!fieldNames.includes(s.whenField) ? html`<option value=${s.whenField}>${s.whenField || '—'}</option>` : null}
                      ${draft.fields.filter((f) => f.name.trim()).map((f) => html`<option key=${f.uid} value=${f.name.trim()}>${f.label || f.name}</option>`)}
                    </select>
                    <select data-testid=${`wf-define-step-${i}-when-op`} value=${s.whenOp} onChange=${(e: Event) => setStep(s.uid, { whenOp: (e.currentTarget as HTMLSelectElement).value as WhenOp })}>
                      ${WHEN_OPS.map((op) => html`<option key=${op} value=${op}>${opLabel(op)}</option>`)}
                    </select>
                    <input
                      type="text"
                      class="wf-when-value"
                      data-testid=${`wf-define-step-${i}-when-value`}
                      placeholder=${s.whenOp === 'in' ? t('wf.define.in_placeholder') : ''}
                      value=${s.whenValue}
                      onInput=${(e: Event) => setStep(s.uid, { whenValue: inputValue(e) })}
                    />`
                : null}
            </div>
          </li>`,
        )}
      </ol>
      <div>
        <button type="button" class="btn btn-small btn-ghost" data-testid="wf-define-add-step" onClick=${() => setDraft((d) => ({ ...d, steps: [...d.steps, emptyStep()] }))}>
          ＋ ${t('wf.define.add_step')}
        </button>
      </div>
      <div class="pager-compose-tools">
        <span class="pager-hint"></span>
        <button type="button" class="btn" onClick=${() => pick(base)}>${t('wf.define.reset')}</button>
        <button type="submit" class="btn btn-primary" data-testid="wf-define-save" disabled=${busy}>
          ${busy ? t('wf.working') : t('wf.define.save')}
        </button>
      </div>
      <${ErrorNote} error=${error} testid="wf-define-error" />
    </form>
  </section>`;
}

// --- the panel --------------------------------------------------------------------------------

function Welcome({ wf }: { wf: WorkflowModel }) {
  const definitions = useStore(wf.definitions);
  return html`<section class="card wf-welcome">
    <div class="empty">${t('wf.pick')}</div>
    <div class="wf-def-picker wf-welcome-defs">
      ${definitions.map(
        (d) => html`<button key=${d.key} type="button" class="wf-def-tile" data-testid=${`wf-quick-${d.key}`} onClick=${() => wf.startNew(d.key)}>
          <strong>${d.name}</strong>
          <span class="muted small">${d.steps.map((s) => s.name).join(' → ')}</span>
        </button>`,
      )}
    </div>
  </section>`;
}

function Main({ ctx }: { ctx: AppContext }) {
  const wf = ctx.workflow;
  const view = useStore(wf.view);
  if (view?.kind === 'start') return html`<${StartView} ctx=${ctx} initialKey=${view.key} />`;
  if (view?.kind === 'item') return html`<${Detail} key=${view.id} ctx=${ctx} id=${view.id} />`;
  if (view?.kind === 'delegation') return html`<${DelegationView} ctx=${ctx} />`;
  if (view?.kind === 'define' && wf.isAdmin) return html`<${DefineView} ctx=${ctx} />`;
  return html`<${Welcome} wf=${wf} />`;
}

export function WorkflowPanel({ ctx }: { ctx: AppContext }) {
  useEffect(() => {
    void ctx.pager.loadDepartments();
    if (ctx.workflow.definitions.get().length === 0) void ctx.workflow.loadDefinitions();
  }, [ctx]);
  return html`<div class="pager-layout wf-layout">
    <div class="pager-side">
      <${Lists} wf=${ctx.workflow} />
    </div>
    <div class="pager-main">
      <${Main} ctx=${ctx} />
    </div>
  </div>`;
}
