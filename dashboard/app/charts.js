// @ts-check
// The three overview charts, drawn by uPlot (from npm, served by the gateway).
import uPlot from "/dashboard/vendor/uPlot.esm.js";

const PALETTE = ["#0f766e", "#7c3aed", "#c2410c", "#2563eb", "#be185d", "#4d7c0f",
  "#0369a1", "#a16207", "#6d28d9", "#b91c1c"];
const MIB = 1024 * 1024;

/**
 * A path builder the full uPlot build always has (its types mark them optional).
 * @template T
 * @param {T | undefined} builder
 * @param {string} name
 * @returns {T}
 */
function pathBuilder(builder, name) {
  if (!builder) throw new Error(`the served uPlot build has no ${name} paths`);
  return builder;
}
const bars = pathBuilder(uPlot.paths.bars, "bars");
const stepped = pathBuilder(uPlot.paths.stepped, "stepped");

function size(el) {
  const width = Math.max(240, Math.floor(el.clientWidth || 600));
  return { width, height: width < 500 ? 200 : 240 };
}

// One chart in a container; rebuilt when its series change, resized with the container.
class Chart {
  constructor(container, label) {
    this.container = container;
    this.label = label;
    this.plot = null;
    this.key = "";
    this.observer = new ResizeObserver(() => this.plot?.setSize(size(this.container)));
    this.observer.observe(container);
  }

  draw(opts, data) {
    const key = opts.series.map((s) => s.label).join("|");
    const points = data[0].length;
    this.container.dataset.points = String(points);
    this.container.setAttribute("aria-label", `${this.label}: ${points} data point(s)`);
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.key = key;
    this.plot = new uPlot({ ...size(this.container), ...opts }, data, this.container);
  }

  destroy() {
    this.observer.disconnect();
    this.plot?.destroy();
  }
}

/**
 * Keeps the labels an axis drew on its chart's container (data-x-ticks, data-y-ticks):
 * uPlot draws them on a canvas, where nothing else can read them.
 * @param {HTMLElement} container @param {"x" | "y"} axis @param {string[]} labels
 */
function shown(container, axis, labels) {
  container.dataset[`${axis}Ticks`] = JSON.stringify(labels);
  return labels;
}

const DAY = 86400;

/**
 * Time labels on one line (uPlot's default two-line date labels collide on narrow screens):
 * seconds when ticks are less than a minute apart, the date when they are days apart, and
 * the weekday when hours repeat across midnight, so no two ticks read the same.
 * @param {HTMLElement} container
 * @returns {import("uplot").Axis.DynamicValues}
 */
const timeLabels = (container) => (u, splits, axis, space, step) => {
  const dates = splits.map((ts) => new Date(ts * 1000));
  /** @param {Intl.DateTimeFormatOptions} format */
  const as = (format) => dates.map((date) => date.toLocaleString([], format));
  const clock = { hour: "2-digit", minute: "2-digit", ...(step < 60 ? { second: "2-digit" } : {}) };
  let labels = step >= DAY ? as({ month: "short", day: "numeric" })
    : as(/** @type {Intl.DateTimeFormatOptions} */ (clock));
  if (new Set(labels).size < labels.length) {
    labels = as(/** @type {Intl.DateTimeFormatOptions} */ ({ weekday: "short", ...clock }));
  }
  return shown(container, "x", labels);
};

/**
 * Tick steps of 1, 2 and 5 times a power of ten from 10^low up: each step is exact with
 * as many decimals as its exponent is negative, so no two ticks can round to one label.
 * @param {number} low @returns {number[]}
 */
function steps(low) {
  const found = [];
  for (let exponent = low; exponent <= 9; exponent += 1) {
    for (const factor of [1, 2, 5]) found.push(Number(`${factor}e${exponent}`));
  }
  return found;
}
const DECIMAL_STEPS = steps(-3);
const WHOLE_STEPS = steps(0);

/**
 * Y-axis labels with the decimals the chosen step needs (0.2 MiB apart: one decimal).
 * @param {HTMLElement} container
 * @returns {import("uplot").Axis.DynamicValues}
 */
const yLabels = (container) => (u, splits, axis, space, step) => {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return shown(container, "y", splits.map((v) => v.toFixed(decimals)));
};

/** @param {HTMLElement} container @param {string} yLabel @param {number[]} yIncrs */
const axes = (container, yLabel, yIncrs) => [
  { stroke: "#475569", grid: { stroke: "#e2e8f0" }, space: 70, values: timeLabels(container) },
  { stroke: "#475569", grid: { stroke: "#e2e8f0" }, label: yLabel, size: 56,
    incrs: yIncrs, values: yLabels(container) },
];

/**
 * The x scale of a chart over a time window: the window the gateway answered for, however
 * few samples fall in it (uPlot widens a single sample to days around it).
 * @param {{ window: [number, number] | null }} holder
 */
const windowScale = (holder) => ({
  time: true,
  /** @type {import("uplot").Scale.Range} */
  range: (u, min, max) => holder.window ?? [min, max],
});

export function memoryChart(container) {
  const chart = new Chart(container, "Memory (PSS) per session");
  /** @type {{ window: [number, number] | null }} */
  const holder = { window: null };
  return {
    /** @param {[number, number]} [window] the time range to show, in seconds */
    update(memory, window) {
      holder.window = window ?? null;
      const names = Object.keys(memory.pss);
      const data = [memory.timestamps, ...names.map((n) => memory.pss[n].map(
        (v) => (v === null ? null : v / MIB)))];
      chart.draw({
        series: [{}, ...names.map((name, i) => ({
          label: name, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: false,
          value: (u, v) => (v === null ? "–" : `${v.toFixed(1)} MiB`),
        }))],
        axes: axes(container, "MiB", DECIMAL_STEPS),
        scales: { x: windowScale(holder),
          y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
        legend: { live: true },
      }, data);
    },
    destroy: () => chart.destroy(),
  };
}

export function messagesChart(container) {
  const chart = new Chart(container, "Messages per hour");
  return {
    update(rows) {
      const data = [rows.map((r) => r.ts), rows.map((r) => r.received), rows.map((r) => r.sent)];
      /** @param {-1 | 1} align */
      const bar = (align) => bars({ size: [0.4, 40], align });
      chart.draw({
        series: [{},
          { label: "Received", stroke: "#0f766e", fill: "#0f766ecc", width: 1, paths: bar(-1) },
          { label: "Sent", stroke: "#7c3aed", fill: "#7c3aedcc", width: 1, paths: bar(1) }],
        axes: axes(container, "messages", WHOLE_STEPS),
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, max * 1.2)] } },
      }, data);
    },
    destroy: () => chart.destroy(),
  };
}

export function connectedChart(container) {
  const chart = new Chart(container, "Connected sessions over time");
  /** @type {{ window: [number, number] | null }} */
  const holder = { window: null };
  return {
    /** @param {[number, number]} [window] the time range to show, in seconds */
    update(points, window) {
      holder.window = window ?? null;
      const data = [points.map((p) => p.ts), points.map((p) => p.connected),
        points.map((p) => p.sessions)];
      const step = stepped({ align: 1 });
      chart.draw({
        series: [{},
          { label: "Connected", stroke: "#15803d", fill: "#15803d22", width: 2, paths: step },
          { label: "Sessions", stroke: "#64748b", width: 1, dash: [4, 4], paths: step }],
        axes: axes(container, "sessions", WHOLE_STEPS),
        scales: { x: windowScale(holder),
          y: { range: (u, min, max) => [0, Math.max(2, max + 1)] } },
      }, data);
    },
    destroy: () => chart.destroy(),
  };
}
