/** Axes and grid lines for the report's charts. */
import type { Scale } from './scale.js';
import { el, text } from './svg.js';

/** Plot area of a chart, in pixels. */
export interface Frame {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** A horizontal axis along the bottom of the frame, with ticks, labels and an optional title. */
export function bottomAxis(frame: Frame, scale: Scale, ticks: readonly number[], format: (v: number) => string, label?: string): string {
  const y = frame.top + frame.height;
  const parts = [el('line', { x1: frame.left, y1: y, x2: frame.left + frame.width, y2: y, class: 'axis' })];
  for (const t of ticks) {
    const x = scale.map(t);
    parts.push(el('line', { x1: x, y1: y, x2: x, y2: y + 4, class: 'axis' }));
    parts.push(text(x, y + 15, format(t), { 'text-anchor': 'middle', class: 'tick' }));
  }
  if (label !== undefined) parts.push(text(frame.left + frame.width / 2, y + 32, label, { 'text-anchor': 'middle', class: 'label' }));
  return el('g', {}, ...parts);
}

/** A vertical axis along the left of the frame; `grid` draws faint lines across the plot. */
export function leftAxis(frame: Frame, scale: Scale, ticks: readonly number[], format: (v: number) => string, label?: string, grid = true): string {
  const x = frame.left;
  const parts = [el('line', { x1: x, y1: frame.top, x2: x, y2: frame.top + frame.height, class: 'axis' })];
  for (const t of ticks) {
    const y = scale.map(t);
    if (grid) parts.push(el('line', { x1: x, y1: y, x2: x + frame.width, y2: y, class: 'grid' }));
    parts.push(el('line', { x1: x - 4, y1: y, x2: x, y2: y, class: 'axis' }));
    parts.push(text(x - 6, y + 4, format(t), { 'text-anchor': 'end', class: 'tick' }));
  }
  if (label !== undefined) {
    const cy = frame.top + frame.height / 2;
    parts.push(text(14, cy, label, { 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 14 ${cy})` }));
  }
  return el('g', {}, ...parts);
}
