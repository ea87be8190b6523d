/** The report's inline stylesheet. */
export const REPORT_STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #222; margin: 24px auto; max-width: 1140px; padding: 0 16px; background: #fafafa; }
h1 { font-size: 22px; margin: 0; }
h2 { font-size: 17px; margin: 28px 0 4px; }
.subtitle { margin: 2px 0; color: #444; }
.generated, .description, footer { color: #777; font-size: 12px; }
.description { margin: 0 0 8px; max-width: 900px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 16px; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.card .value { font-size: 17px; font-weight: 600; }
.card .name { color: #666; font-size: 12px; }
.card.bad { border-color: #d62728; background: #fff3f3; }
.violations { border: 1px solid #d62728; background: #fff3f3; border-radius: 6px; padding: 4px 14px; margin-top: 16px; }
.violations h2 { margin-top: 10px; }
.violations li { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
svg.chart { background: #fff; border: 1px solid #e3e3e3; border-radius: 4px; display: block; }
svg .axis { stroke: #666; stroke-width: 1; }
svg .grid { stroke: #eee; stroke-width: 1; }
svg .tick { font-size: 11px; fill: #555; }
svg .label { font-size: 12px; fill: #333; }
svg .heading { font-size: 12px; font-weight: 600; fill: #222; }
.histograms { display: grid; grid-template-columns: repeat(2, 540px); gap: 12px; }
.readout { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; color: #333; min-height: 1.4em; margin: 4px 0; }
table.phases { border-collapse: collapse; margin-top: 14px; font-size: 12px; background: #fff; }
table.phases th, table.phases td { border: 1px solid #e3e3e3; padding: 3px 8px; text-align: right; }
table.phases th:nth-child(-n+2), table.phases td:nth-child(-n+2) { text-align: left; }
footer { margin: 28px 0 8px; }
`;
