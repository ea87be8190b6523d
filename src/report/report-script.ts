/**
 * The report's only script (inline, no network): a read-out of the memory
 * map under the pointer, and a `data-report-ready` mark on `<body>` with
 * the number of charts, which the headless-browser test looks for.
 * Kept as plain browser JavaScript text, since the report is one file.
 */
export const REPORT_SCRIPT = String.raw`
(function () {
  'use strict';
  function fmtBytes(n) {
    var units = [['T', Math.pow(2, 40)], ['G', Math.pow(2, 30)], ['M', Math.pow(2, 20)], ['K', 1024]];
    for (var i = 0; i < units.length; i++) if (n >= units[i][1]) return +(n / units[i][1]).toFixed(2) + units[i][0];
    return String(Math.round(n));
  }
  document.querySelectorAll('svg.memory-map').forEach(function (svg) {
    var d = svg.dataset;
    var left = +d.left, top = +d.top, width = +d.width, height = +d.height;
    var t0 = +d.t0, t1 = +d.t1, mem = +d.mem, base = +d.base, levels = +d.levels;
    var times = d.times ? d.times.split(',').map(Number) : [];
    var grid = d.grid ? d.grid.split('|') : [];
    var out = document.getElementById(svg.getAttribute('aria-describedby') || '');
    svg.addEventListener('mousemove', function (ev) {
      var box = svg.getBoundingClientRect();
      var px = (ev.clientX - box.left) * (svg.viewBox.baseVal.width / box.width);
      var py = (ev.clientY - box.top) * (svg.viewBox.baseVal.height / box.height);
      if (!out || px < left || px > left + width || py < top || py > top + height || grid.length === 0) return;
      var t = t0 + ((px - left) / width) * (t1 - t0);
      var c = 0;
      while (c + 1 < times.length && times[c + 1] <= t) c++;
      var rows = grid[c].length;
      var r = Math.min(rows - 1, Math.floor(((py - top) / height) * rows));
      var lo = base + (r * mem) / rows, hi = base + ((r + 1) * mem) / rows;
      var level = grid[c].charCodeAt(r) - 97;
      out.textContent = 't = ' + (t / 1000).toFixed(2) + ' s, guest ' + fmtBytes(lo) + ' - ' + fmtBytes(hi) +
        ' (0x' + lo.toString(16) + '): ' + Math.round((level / levels) * 100) + '% shared';
    });
  });
  document.body.setAttribute('data-report-ready', String(document.querySelectorAll('svg.chart').length));
})();
`;
