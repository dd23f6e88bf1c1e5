// Small pieces shared by the panels.
import type { ComponentChildren } from 'preact';
import { html } from './html';
import { hasKey, t, formatAgo, formatFull } from './i18n';
import { ApiError } from './http';
import type { Presence, Status } from './types';

export function StatusBadge({ status, testid }: { status: Status; testid?: string }) {
  const key = `status.${status}`;
  return html`<span class=${`badge status-${status}`} data-testid=${testid} data-status=${status}>
    ${hasKey(key) ? t(key) : status}
  </span>`;
}

export function presenceLabel(presence: Presence, lastSeen: string | null): string {
  const label = t(`presence.${presence}`);
  if (presence === 'offline' && lastSeen) {
    return `${label} · ${t('presence.last_seen', { time: formatAgo(lastSeen) })}`;
  }
  return label;
}

export function PresenceDot(props: { presence: Presence; lastSeen: string | null; testid?: string }) {
  const title = props.lastSeen
    ? `${presenceLabel(props.presence, props.lastSeen)} (${formatFull(props.lastSeen)})`
    : presenceLabel(props.presence, null);
  return html`<span
    class=${`presence-dot presence-${props.presence}`}
    data-testid=${props.testid}
    data-presence=${props.presence}
    title=${title}
    aria-label=${title}
    role="img"
  ></span>`;
}

/** Turn `details` of a failure envelope into readable lines, whatever its exact shape. */
function detailLines(details: unknown): string[] {
  if (details === null || details === undefined) return [];
  if (typeof details === 'string') return [details];
  if (Array.isArray(details)) {
    return details.flatMap((item) => {
      if (typeof item === 'string') return [item];
      if (typeof item === 'object' && item !== null) {
        const record = item as Record<string, unknown>;
        const field = record.field ?? record.loc ?? record.name ?? record.path;
        const message = record.message ?? record.msg ?? record.error;
        if (field !== undefined || message !== undefined) {
          const where = Array.isArray(field) ? field.join('.') : field;
          return [[where, message].filter((part) => part !== undefined).join(': ')];
        }
      }
      return [JSON.stringify(item)];
    });
  }
  if (typeof details === 'object') {
    const record = details as Record<string, unknown>;
    if ('fields' in record) return detailLines(record.fields);
    return Object.entries(record)
      .filter(([key]) => key !== 'retry_after_s')
      .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  return [String(details)];
}

export function errorText(error: ApiError): string {
  if (error.code === 'rate_limited') {
    const retry = (error.details as { retry_after_s?: number } | null)?.retry_after_s;
    if (typeof retry === 'number') return t('error.rate_limited_retry', { n: Math.ceil(retry) });
  }
  const key = `error.${error.code}`;
  return hasKey(key) ? t(key) : t('error.unknown');
}

/** An inline failure: the localised code, the server's message and the field details. */
export function ErrorNote({ error, testid }: { error: ApiError | null; testid?: string }) {
  if (!error) return null;
  const lines = detailLines(error.details);
  const message = error.message && error.message !== errorText(error) ? error.message : '';
  return html`<div class="error-note" role="alert" data-testid=${testid} data-code=${error.code}>
    <strong>${errorText(error)}</strong>
    ${message && html`<span class="error-message">${message}</span>`}
    ${lines.length > 0 && html`<ul>${lines.map((line) => html`<li>${line}</li>`)}</ul>`}
  </div>`;
}

/**
 * An arrival pop-up (pages, circulations), stacked top right over every panel: icon, a title
 * that opens the item, badges, a close button, a clamped body and the actions.
 */
export function PopupCard(props: {
  testid: string;
  /** extra attributes, e.g. `data-message-id` */
  attrs?: Record<string, string>;
  urgent?: boolean;
  icon: string;
  title: string;
  badges?: ComponentChildren;
  body: ComponentChildren;
  extra?: ComponentChildren;
  actions: ComponentChildren;
  onOpen: () => void;
  onClose: () => void;
}) {
  return html`<div class=${`pager-popup${props.urgent ? ' urgent' : ''}`} data-testid=${props.testid} ...${props.attrs ?? {}}>
    <div class="pager-popup-head">
      <span aria-hidden="true">${props.icon}</span>
      <strong class="pager-popup-from" onClick=${props.onOpen}>${props.title}</strong>
      ${props.badges}
      <button type="button" class="pager-chip-x" title=${t('common.close')} onClick=${props.onClose}>×</button>
    </div>
    <div class="pager-popup-body" onClick=${props.onOpen}>${props.body}</div>
    ${props.extra}
    <div class="pager-popup-actions">${props.actions}</div>
  </div>`;
}

/** Line icons drawn inline (emoji may have no font on office machines). */
const ICONS: Record<string, string> = {
  folder: 'M3 6.5A1.5 1.5 0 0 1 4.5 5H9l2 2h8.5A1.5 1.5 0 0 1 21 8.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z',
  file: 'M6 3h8l4 4v14H6zM14 3v4h4M9 12h6M9 16h6',
  lock: 'M6 11h12v9H6zM8.5 11V8a3.5 3.5 0 0 1 7 0v3',
  unlock: 'M6 11h12v9H6zM8.5 11V8a3.5 3.5 0 0 1 6.8-1.2',
  home: 'M4 11l8-7 8 7M6 9.5V20h12V9.5',
  user: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4.5 20a7.5 7.5 0 0 1 15 0',
  dept: 'M4 20V6l8-3v17M12 8l8 3v9M3 20h18M7 9h2M7 13h2M7 17h2M15 13h2M15 17h2',
  role: 'M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM2.5 20a6.5 6.5 0 0 1 13 0M16 4.5a3.5 3.5 0 0 1 0 6.5M18 14.5a6.5 6.5 0 0 1 3.5 5.5',
  archive: 'M3 4h18v4H3zM5 8v12h14V8M10 12h4',
  mail: 'M3 6h18v12H3zM3 6l9 7 9-7',
};

export function Icon({ name, title }: { name: keyof typeof ICONS | string; title?: string }) {
  const d = ICONS[name] ?? ICONS.file;
  return html`<svg class=${`icon icon-${name}`} viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden=${title ? undefined : 'true'} role=${title ? 'img' : undefined}>
    ${title ? html`<title>${title}</title>` : null}
    <path d=${d} />
  </svg>`;
}
