// The person picker shared by the panels that name one person or a few (tasks, approvals,
// documents, the library's permissions): the recipient picker of compose.ts, people only, one
// person unless `multiple`. Test ids: `<prefix>-to-input`, `<prefix>-to-option-<user_id>`,
// `<prefix>-chip-<user_id>`.
import { RecipientPicker, type PeopleSource, type Recipient } from './compose';
import { html } from './html';
import { Store, useStore } from './store';
import type { Id } from './types';

/** Names learnt from earlier picks, for chips that arrive as bare ids (the approvals model has one). */
export interface NameMemory {
  readonly names: Store<Record<Id, string>>;
  learn(chosen: Recipient[]): void;
}

const noNames = new Store<Record<Id, string>>({});

export function PersonPicker(props: {
  people: PeopleSource;
  prefix: string;
  label: string;
  chosen: Recipient[];
  multiple?: boolean;
  memory?: NameMemory;
  onChange: (r: Recipient[]) => void;
}) {
  const names = useStore(props.memory?.names ?? noNames);
  const chosen = props.chosen.map((r) => (r.name ? r : { ...r, name: names[r.id] || r.id }));
  return html`<${RecipientPicker}
    source=${props.people}
    prefix=${props.prefix}
    label=${props.label}
    peopleOnly=${true}
    chosen=${chosen}
    onChange=${(next: Recipient[]) => {
      props.memory?.learn(next);
      props.onChange(props.multiple ? next : next.slice(-1));
    }}
  />`;
}
