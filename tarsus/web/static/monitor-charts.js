/* Draws the monitoring pages' charts with uPlot (vendored: uplot.min.js, MIT) from the JSON
   the page carries; the same numbers are in the page's table, which works without this. */
(function () {
  "use strict";
  function minutes(label) { var p = label.split(":"); return (+p[0]) * 60 + (+p[1]); }
  function hhmm(m) { var h = Math.floor(m / 60), n = m % 60; return (h < 10 ? "0" : "") + h + ":" + (n < 10 ? "0" : "") + n; }
  var GAP = 12, FRAME = 10;  /* .charts gap; a figure's padding and border (console.css) */
  /* a chart's width: its container's, two side by side when each still gets 420 px or more */
  function width(host) {
    var room = host.clientWidth || 600, across = room >= 2 * 420 + GAP ? 2 : 1;
    return Math.max(200, Math.floor((room - GAP * (across - 1)) / across) - FRAME);
  }
  var drawn = [];
  function chart(host, title, labels, xs, today, compare) {
    var box = document.createElement("figure");
    box.className = "chart";
    host.appendChild(box);
    drawn.push({ host: host, plot: new uPlot({
      title: title, width: width(host), height: 220,
      scales: { x: { time: false } },
      axes: [{ values: function (u, vals) { return vals.map(hhmm); } }, {}],
      series: [
        { value: function (u, v) { return v == null ? "" : hhmm(v); } },
        { label: labels.date, stroke: "#1f5fbf", width: 2, spanGaps: false },
        { label: labels.compare, stroke: "#b07a00", width: 1, dash: [6, 4] }
      ]
    }, [xs, today, compare], box) });
  }
  /* follows the window (a phone turned, a window narrowed) */
  window.addEventListener("resize", function () {
    drawn.forEach(function (d) { d.plot.setSize({ width: width(d.host), height: 220 }); });
  });
  function stats(host, labels, rows) {
    var xs = rows.map(function (r) { return minutes(r.key); });
    ["calls", "avg_ms", "failure_rate", "timeout_rate"].forEach(function (k) {
      chart(host, labels[k], labels, xs,
            rows.map(function (r) { return r.today[k]; }),
            rows.map(function (r) { return r.compare[k]; }));
    });
  }
  function properties(host, labels, charts) {
    charts.forEach(function (c) {
      chart(host, c.name, labels, c.points.map(function (p) { return minutes(p.key); }),
            c.points.map(function (p) { return p.today; }),
            c.points.map(function (p) { return p.compare; }));
    });
  }
  function draw() {
    if (typeof uPlot === "undefined") { return; }
    document.querySelectorAll(".charts[data-kind]").forEach(function (host) {
      var data = document.getElementById(host.id + "-data");
      if (!data) { return; }
      var rows = JSON.parse(data.textContent || "[]");
      var labels = JSON.parse(host.getAttribute("data-labels") || "{}");
      if (!rows.length) { return; }
      (host.getAttribute("data-kind") === "stats" ? stats : properties)(host, labels, rows);
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
