"""Layout checks of the explorer pages in a browser (Playwright pages): controls whose text is cut off
or that reach outside the viewport, and the text a visitor can see (for the musician and researcher
views)."""

import re

#: A latent coordinate as the researcher view names it: z[0], z[12].
Z_INDEX = re.compile(r"z\[\d+\]")

#: Room Chromium's <select> keeps for its arrow, in CSS px, beside its padding.
SELECT_ARROW_PX = 20

CLIPPED = """(arrow) => {
  const out = [];
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > width + 1) {
    out.push(`the page scrolls sideways (${document.documentElement.scrollWidth} px wide in ${width} px)`);
  }
  const ctx = document.createElement("canvas").getContext("2d");
  for (const el of document.querySelectorAll("select, button, input, label, output, table, .card")) {
    if (!el.checkVisibility()) continue;
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height) continue;
    const text = (el.innerText || el.value || "").trim().slice(0, 40);
    const name = `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${text}"`;
    if (box.left < -1 || box.right > width + 1) {
      out.push(`${name}: ${Math.round(box.left)}..${Math.round(box.right)} px, outside the viewport's 0..${width}`);
    }
    if (el.scrollWidth > el.clientWidth + 1 && !(el.tagName === "INPUT" && el.type !== "text")) {
      out.push(`${name}: content ${el.scrollWidth} px wide in ${el.clientWidth} px`);
    }
    if (el.tagName === "SELECT" && el.selectedOptions.length) {
      const style = getComputedStyle(el);
      ctx.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const text = el.selectedOptions[0].textContent;
      const need = ctx.measureText(text).width + parseFloat(style.paddingLeft) + parseFloat(style.paddingRight) + arrow;
      if (need > el.clientWidth + 1) out.push(`${name}: "${text}" needs ${Math.ceil(need)} px, has ${el.clientWidth}`);
    }
  }
  return out;
}"""

VISIBLE_TEXT = """() => {
  const texts = [document.body.innerText];
  for (const el of document.querySelectorAll("select")) {
    if (el.checkVisibility()) texts.push(...[...el.options].map((o) => o.textContent));
  }
  for (const el of document.querySelectorAll("[title], [aria-label]")) {
    if (el.checkVisibility()) texts.push(el.title || "", el.getAttribute("aria-label") || "");
  }
  return texts.join("\\n");
}"""


def clipped_controls(page) -> list:
    """One line per visible select, button, input, label, output, table or card (``.card``) of ``page``
    whose content is wider than its box, that reaches outside the viewport horizontally, or (a select)
    whose chosen option's text does not fit; and one if the page scrolls sideways."""
    return page.evaluate(CLIPPED, SELECT_ARROW_PX)


def visible_text(page) -> str:
    """What a visitor can read on ``page``: the rendered text, the options of the visible menus, and the
    tooltips and accessible names of visible elements."""
    return page.evaluate(VISIBLE_TEXT)
