import htm from 'htm';
import { h, type VNode } from 'preact';

/** Tagged-template markup bound to Preact, so no JSX build step is needed. */
export const html = htm.bind(h as never) as unknown as (
  strings: TemplateStringsArray,
  ...values: unknown[]
) => VNode;
