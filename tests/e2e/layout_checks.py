"""What a projector shows wrong, measured in the browser: words broken over two lines, numbers split from their
units, text cut off by its box, text that overlaps other text or spills out of its element, and tables that hide
columns behind a scrollbar. Each check is one script run in the page; it returns a line per problem (none when
there is none), so a test can print exactly what is wrong where."""

from __future__ import annotations

# What every check shares: `found` (its lines), `shown` (an element with a box, outside an inert part of the
# page: closed expanders and other tabs have none) and `roots` (the page and an open sidebar: a collapsed sidebar
# is off-screen and squeezed, and what it holds is not shown).
_SHARED = r"""
  const found = [];
  const shown = e => e.getClientRects().length > 0 && !e.closest('[inert]');
  const roots = '[data-testid="stMain"], [data-testid="stSidebar"]:not([data-collapsed="true"])';
"""


def _script(body: str) -> str:
    """A check as the page runs it: the shared definitions, its body, its lines."""
    return "() => {" + _SHARED + body + "  return found;\n}"


# Text that does not fit: an element whose content is wider than its box (scrollWidth > clientWidth), in or
# under a metric's label, value or delta, a button or page link, a selectbox's input (its selected value) or
# a multiselect's chosen items.
CUT_OFF = _script(r"""
  const text = e => (e.value || e.innerText || '').trim().replace(/\s+/g, ' ').slice(0, 60);
  const check = (kind, selector) => {
    for (const root of document.querySelectorAll(roots)) {
      for (const el of root.querySelectorAll(selector)) {
        if (!shown(el)) continue;
        for (const e of [el, ...el.querySelectorAll('*')]) {
          if (e instanceof SVGElement) continue;
          if (e.scrollWidth > e.clientWidth + 1) {
            found.push(`${kind} "${text(el)}": ${e.scrollWidth} px wide in ${e.clientWidth} px`);
            break;
          }
        }
      }
    }
  };
  check('metric', '[data-testid="stMetricLabel"], [data-testid="stMetricValue"], [data-testid="stMetricDelta"]');
  check('button', 'button, [data-testid="stPageLink-NavLink"]');
  check('select', '[data-testid="stSelectbox"] input');
  check('multiselect', '[data-testid="stMultiSelectTagsContainer"]');
""")

# Words broken inside: each word of the text of a button, page link, metric, widget label, tab, expander
# title, table header or cell, heading or caption is measured with a DOM Range; a word whose boxes lie on more
# than one line was broken (Chromium breaks a word only when it cannot fit, e.g. "Ru/n/de/mo" in a narrow
# column). A number and its unit ("53.6 %", "12 px", "4.5 s") are one word here: split over lines they read
# as two numbers. Words of one letter cannot break and are skipped.
BROKEN_WORDS = _script(r"""
  const selectors = ['button', '[data-testid="stPageLink-NavLink"]', '[data-testid="stMetric"]',
    '[data-testid="stWidgetLabel"]', '[data-baseweb="tab"]', '[data-testid="stExpander"] summary',
    '[data-testid="stTable"] th', '[data-testid="stTable"] td', '[data-testid="stHeading"]',
    '[data-testid="stCaptionContainer"]', '[data-testid="stMarkdownContainer"]', '[data-baseweb="tag"]'];
  // boxes on one line share their vertical middle band (a fallback font's glyph, "λ", may sit higher or lower)
  const lines = rects => {
    const bands = [];
    for (const r of rects) {
      if (r.width < 1) continue;
      const middle = (r.top + r.bottom) / 2;
      if (!bands.some(l => middle > l.top && middle < l.bottom)) bands.push(r);
    }
    return bands.length;
  };
  // a word ends at a space, a dash, a slash or a bar (a line may break after those)
  const units = '%|px|ms|s|min|h|k|M|G|B|KiB|MiB|GiB|MACs|img\\/s';
  const number = `\\d[\\d.,]*(?:[\\s\u00a0\u202f]?(?:${units}))?(?![\\w])`;
  const token = new RegExp(`${number}|[^\\s\\-\u2013\u2014\\/|]{2,}`, 'g');
  const seen = new Set();
  for (const root of document.querySelectorAll(roots)) {
    for (const el of root.querySelectorAll(selectors.join(','))) {
      if (!shown(el)) continue;
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (seen.has(node) || node.parentElement.closest('svg, code, pre, .katex')) continue;
        seen.add(node);
        for (const m of node.data.matchAll(token)) {
          const range = document.createRange();
          range.setStart(node, m.index);
          range.setEnd(node, m.index + m[0].length);
          if (lines(range.getClientRects()) > 1) found.push(`"${m[0]}" broken over two lines in "${
            el.innerText.trim().replace(/\s+/g, ' ').slice(0, 50)}"`);
        }
      }
    }
  }
""")

# Overlaps: in every plotly chart on the page, two pieces of text on top of each other (titles, subplot titles,
# annotations, axis titles, ticks, legend entries, bar labels) or text outside the chart's box (plotly clips it
# there), and an annotation drawn over a bar; outside charts, an element's content that reaches into the element
# below (a multiselect's chips over the next widget).
OVERLAPS = _script(r"""
  const area = r => r.width * r.height;
  const meet = (a, b) => {
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    return w > 2 && h > 2 && w * h > 0.1 * Math.min(area(a), area(b));
  };
  const within = (r, box) => r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 &&
    r.bottom <= box.bottom + 1;
  const name = plot => {
    const keyed = plot.closest('[class*="st-key-"]');
    const key = keyed ? [...keyed.classList].find(c => c.startsWith('st-key-')).slice(7) : '';
    const title = plot.querySelector('.gtitle');
    return `chart ${key || (title ? '"' + title.textContent.slice(0, 30) + '"' : '(untitled)')}`;
  };
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (!shown(plot)) continue;
    const container = plot.querySelector('.svg-container');
    if (!container) continue;
    const box = container.getBoundingClientRect();
    const texts = [...plot.querySelectorAll('.main-svg text')]
      .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0 &&
                   getComputedStyle(t).opacity !== '0' && !t.closest('.hoverlayer'))
      .map(t => ({t, r: t.getBoundingClientRect(), s: t.textContent.trim().slice(0, 30)}));
    for (const a of texts) {
      if (!within(a.r, box)) found.push(`${name(plot)}: "${a.s}" outside the chart`);
    }
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        const a = texts[i], b = texts[j];
        if (a.t.contains(b.t) || b.t.contains(a.t)) continue;
        if (meet(a.r, b.r)) found.push(`${name(plot)}: "${a.s}" overlaps "${b.s}"`);
      }
    }
    const bars = [...plot.querySelectorAll('.barlayer .point path')].map(p => p.getBoundingClientRect())
      .filter(r => r.width > 1 && r.height > 1);
    for (const note of plot.querySelectorAll('.annotation-text')) {
      const r = note.getBoundingClientRect();
      if (bars.some(b => meet(r, b))) {
        found.push(`${name(plot)}: "${note.textContent.trim().slice(0, 30)}" drawn over a bar`);
      }
    }
  }
  for (const el of document.querySelectorAll('[data-testid="stMain"] [data-testid="stElementContainer"]')) {
    if (!shown(el)) continue;
    const box = el.getBoundingClientRect();
    for (const inner of el.querySelectorAll('[data-baseweb="tag"], button, [data-testid="stMetricValue"]')) {
      const r = inner.getBoundingClientRect();
      if (r.width && r.bottom > box.bottom + 2) {
        found.push(`"${inner.innerText.trim().slice(0, 30)}" reaches ${Math.round(r.bottom - box.bottom)} px ` +
                   `below its element, over the next one`);
      }
    }
  }
""")

# Tables that hide columns: a dataframe (Streamlit's grid scrolls sideways inside `.dvn-scroller`) or a static
# table wider than the room it has.
HIDDEN_COLUMNS = _script(r"""
  for (const grid of document.querySelectorAll('[data-testid="stDataFrame"]')) {
    if (!shown(grid)) continue;
    const scroller = grid.querySelector('.dvn-scroller');
    if (scroller && scroller.scrollWidth > scroller.clientWidth + 2) {
      const headers = grid.querySelectorAll('[role="columnheader"]');
      found.push(`a table is ${scroller.scrollWidth} px wide in ${scroller.clientWidth} px: columns hidden (${
        [...headers].map(h => h.textContent.trim()).filter(Boolean).slice(0, 8).join(', ')})`);
    }
  }
  for (const table of document.querySelectorAll('[data-testid="stTable"]')) {
    if (!shown(table)) continue;
    for (const e of [table, ...table.querySelectorAll('div')]) {
      if (e.scrollWidth > e.clientWidth + 2) {
        found.push(`a table is ${e.scrollWidth} px wide in ${e.clientWidth} px: columns hidden`);
        break;
      }
    }
  }
""")

CHECKS = {"cut off": CUT_OFF, "broken": BROKEN_WORDS, "overlap": OVERLAPS, "hidden columns": HIDDEN_COLUMNS}


# Every shown plotly chart has laid itself out at its box's width: Streamlit reports the page idle before plotly has
# redrawn a chart whose column changed size (a sidebar closing, a resize), and a check run in between measures
# the old layout squeezed into the new box (seen once on a loaded machine: Build's architecture chart at 800 px).
CHARTS_SETTLED = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(g => g.getClientRects().length > 0 && !g.closest('[inert]'))
  .every(g => g._fullLayout && Math.abs(g._fullLayout.width - g.getBoundingClientRect().width) <= 2)"""


def layout_problems(page) -> list[str]:
    """Every problem the checks find on the page once its charts have laid themselves out at their widths."""
    page.wait_for_function(CHARTS_SETTLED, timeout=30_000)
    return [f"{kind}: {line}" for kind, script in CHECKS.items() for line in page.evaluate(script)]
