"""GET /: a small form for people, generated from the loaded model's feature table.

One self-contained HTML page: inline CSS and script, no external assets, so it works offline.
It posts JSON to the same /predict that every client uses and shows the answer and its
probability. Every model-derived string is escaped; the feature table reaches the script as
JSON inside a non-executed script element. A Content-Security-Policy with the hashes of the
inline style and script forbids anything else, so nothing can be loaded from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

import msgspec

from modelapi.bundle import Manifest
from modelapi.routes.openapi import RenderCache, example_row, model_key, range_hint
from modelapi.schema import Feature, listed_categories
from modelapi.service import Request, Response, Service

__all__ = ["home_page", "render_page"]

_pages = RenderCache()
# A category with at most this many (listed) categories is a dropdown; more are a text box.
_MAX_DROPDOWN = 8

_STYLE = """
:root { color-scheme: light dark; --accent: #2563eb; --muted: #6b7280; --line: #d1d5db; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 44rem; margin: 0 auto; padding: 2rem 1.25rem 3rem; }
h1 { margin: 0 0 .25rem; font-size: 1.6rem; }
header p { margin: 0 0 1.5rem; color: var(--muted); }
form { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: 1rem; }
.field { display: flex; flex-direction: column; gap: .25rem; }
label { font-weight: 600; }
input, select { font: inherit; padding: .45rem .6rem; border: 1px solid var(--line);
  border-radius: .4rem; background: transparent; color: inherit; }
input:focus, select:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
.field small { color: var(--muted); font-size: .8rem; }
.field .reason { color: #dc2626; }
.field .warning { color: #b45309; }
#caution { color: #b45309; margin: .5rem 0 0; }
[aria-invalid="true"] { border-color: #dc2626; }
.actions { grid-column: 1 / -1; display: flex; gap: .75rem; }
button { font: inherit; padding: .55rem 1.2rem; border-radius: .4rem; cursor: pointer;
  border: 1px solid var(--accent); background: var(--accent); color: #fff; }
button.secondary { background: transparent; color: var(--accent); }
button:disabled { opacity: .6; cursor: progress; }
section { margin-top: 1.5rem; padding: 1rem 1.25rem; border-radius: .5rem;
  border: 1px solid var(--line); }
#result .answer { font-size: 1.35rem; margin: 0; }
#result .answer strong { font-size: 1.8rem; }
#probabilities { list-style: none; padding: 0; margin: .75rem 0 0; }
#probabilities li { display: grid; grid-template-columns: 6rem 1fr 4.5rem; gap: .5rem;
  align-items: center; }
meter { width: 100%; }
#problem { border-color: #dc2626; }
#problem ul { margin: .25rem 0 0; padding-left: 1.2rem; }
footer { margin-top: 2rem; font-size: .9rem; color: var(--muted); }
footer a { color: var(--accent); }
"""

_SCRIPT = """
"use strict";
const config = JSON.parse(document.getElementById("config").textContent);
const form = document.getElementById("form");
const submit = document.getElementById("submit");
const result = document.getElementById("result");
const problem = document.getElementById("problem");

function clearReasons() {
  for (const feature of config.features) {
    const input = form.elements[feature.key];
    input.removeAttribute("aria-invalid");
    document.getElementById("reason-" + feature.key).textContent = "";
  }
}

// A value outside the training range is answered, but the model never saw one like it.
function outsideRange(feature) {
  if (feature.min === undefined) return false;
  const text = form.elements[feature.key].value.trim();
  if (text === "") return false;
  const value = Number(text);
  return value < feature.min || value > feature.max;
}

function showRangeWarnings() {
  const outside = [];
  for (const feature of config.features) {
    const warning = document.getElementById("warning-" + feature.key);
    if (outsideRange(feature)) {
      warning.textContent = "outside the training range " + feature.range
        + ": the answer may not be reliable";
      outside.push(feature.key);
    } else {
      warning.textContent = "";
    }
  }
  return outside;
}

form.addEventListener("input", showRangeWarnings);

function percent(p) {
  return (100 * p).toFixed(1) + " %";
}

function showAnswer(answer, version) {
  const label = answer[config.target];
  document.getElementById("answer").textContent = String(label);
  const list = document.getElementById("probabilities");
  list.replaceChildren();
  const probability = document.getElementById("probability");
  if (answer.probabilities) {
    probability.textContent = "probability " + percent(answer.probabilities[String(label)]);
    for (const [name, p] of Object.entries(answer.probabilities)) {
      const item = document.createElement("li");
      const title = document.createElement("span");
      title.textContent = config.target_label + " " + name;
      const meter = document.createElement("meter");
      meter.min = 0; meter.max = 1; meter.value = p;
      const value = document.createElement("span");
      value.textContent = percent(p);
      item.append(title, meter, value);
      list.append(item);
    }
  } else {
    probability.textContent = "";
  }
  document.getElementById("version").textContent = version ? "model " + version : "";
  const outside = showRangeWarnings();
  const caution = document.getElementById("caution");
  caution.textContent = outside.length
    ? "Outside the training range: " + outside.join(", ") + ". See the training report."
    : "";
  caution.hidden = outside.length === 0;
  result.hidden = false;
}

function showProblem(body) {
  const list = problem.querySelector("ul");
  list.replaceChildren();
  for (const detail of (body && body.details) || []) {
    const reason = document.getElementById("reason-" + detail.field);
    if (reason) {
      reason.textContent = detail.reason;
      form.elements[detail.field].setAttribute("aria-invalid", "true");
    }
    const item = document.createElement("li");
    item.textContent = detail.field + ": " + detail.reason;
    list.append(item);
  }
  problem.hidden = false;
}

document.getElementById("example").addEventListener("click", () => {
  for (const feature of config.features) {
    const value = config.example[feature.key];
    form.elements[feature.key].value = value === undefined || value === null ? "" : String(value);
  }
  showRangeWarnings();
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearReasons();
  result.hidden = true;
  problem.hidden = true;
  const body = {};
  for (const feature of config.features) {
    const value = form.elements[feature.key].value.trim();
    if (value === "") {
      body[feature.key] = null;
    } else if (feature.type === "integer" || feature.type === "number") {
      body[feature.key] = Number(value);
    } else if (feature.type === "boolean") {
      body[feature.key] = value === "true";
    } else {
      body[feature.key] = value;
    }
  }
  submit.disabled = true;
  try {
    const response = await fetch(config.predict, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (response.ok) {
      showAnswer(answer, response.headers.get("X-Model-Version"));
    } else {
      showProblem(answer);
    }
  } catch (error) {
    showProblem({details: [{field: "server", reason: "could not be reached; try again"}]});
  } finally {
    submit.disabled = false;
  }
});
"""


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


_POLICY = (
    f"default-src 'none'; script-src {_hash(_SCRIPT)}; style-src {_hash(_STYLE)};"
    " connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'"
)


def _label(column: str, key: str) -> str:
    """A label for people: `BMI` stays, `blood_pressure` becomes `Blood pressure`."""
    if column.isupper():
        return column
    words = key.replace("_", " ")
    return words[:1].upper() + words[1:]


def _field(feature: Feature) -> str:
    key = escape(feature.key)
    label = escape(_label(feature.column, feature.key))
    hint_words = [f"CSV column {feature.column}"]
    required = "" if feature.accepts_missing else " required"
    described = f'aria-describedby="hint-{key}"'
    if feature.type == "category":
        control = _category_control(feature, key, required, described, hint_words)
    elif feature.type == "boolean":
        control = (
            f'<select id="{key}" name="{key}"{required} {described}>'
            f'<option value="" {"" if feature.accepts_missing else "disabled "}selected>'
            f"{'(missing)' if feature.accepts_missing else 'Choose...'}</option>"
            '<option value="true">true</option><option value="false">false</option></select>'
        )
    else:
        hint = range_hint(feature)
        if hint:
            hint_words.append(f"training range {hint}")
        if feature.type == "datetime":
            hint_words.append("a date (2024-05-31) or date and time, UTC unless a zone is given")
            control = (
                f'<input id="{key}" name="{key}" type="text"{required}'
                f' placeholder="YYYY-MM-DD" {described}>'
            )
        else:
            step = "1" if feature.type == "integer" else "any"
            placeholder = escape(hint.replace(" to ", " - ")) if hint else ""
            control = (
                f'<input id="{key}" name="{key}" type="number" step="{step}"{required}'
                f' placeholder="{placeholder}" {described}>'
            )
    if feature.accepts_missing:
        hint_words.append("may be left empty")
    return (
        f'<div class="field"><label for="{key}">{label}</label>{control}'
        f'<small id="hint-{key}">{escape(", ".join(hint_words))}</small>'
        f'<small class="reason" id="reason-{key}" aria-live="polite"></small>'
        f'<small class="warning" id="warning-{key}" aria-live="polite"></small></div>'
    )


def _category_control(
    feature: Feature, key: str, required: str, described: str, hint_words: list[str]
) -> str:
    """A dropdown for a few categories, a text box with suggestions for more, and a plain
    text box for a long list, which the page never publishes (training data)."""
    listed = listed_categories(feature)
    if listed is not None and len(listed) <= _MAX_DROPDOWN and not feature.accepts_unknown:
        options = "".join(f'<option value="{escape(c)}">{escape(c)}</option>' for c in listed)
        first = "(missing)" if feature.accepts_missing else "Choose..."
        disabled = "" if feature.accepts_missing else "disabled "
        return (
            f'<select id="{key}" name="{key}"{required} {described}>'
            f'<option value="" {disabled}selected>{first}</option>{options}</select>'
        )
    if listed is None:
        hint_words.append(f"one of {len(feature.categories or ())} training categories")
        suggestions = ""
        listed_attr = ""
    else:
        suggestions = f'<datalist id="list-{key}">' + "".join(
            f'<option value="{escape(c)}"></option>' for c in listed
        )
        suggestions += "</datalist>"
        listed_attr = f' list="list-{key}"'
    if feature.accepts_unknown:
        hint_words.append("other text is answered too")
    return (
        f'<input id="{key}" name="{key}" type="text"{required}{listed_attr}'
        f' autocomplete="off" {described}>{suggestions}'
    )


def _script_feature(feature: Feature) -> dict[str, object]:
    """What the script knows of a feature: its key and type, and a number's training range
    (already shown in its hint) to warn beside a value outside it."""
    known: dict[str, object] = {"key": feature.key, "type": feature.type}
    if feature.type in ("integer", "number") and feature.min is not None:
        known.update(min=feature.min, max=feature.max, range=range_hint(feature))
    return known


def _json_for_script(value: object) -> str:
    # Inside <script> only "</" could end the element early; escaping <, > and & covers it.
    text = msgspec.json.encode(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(manifest: Manifest) -> bytes:
    """Render the page for a model: one labelled input per feature, the answer after submit."""
    features = manifest.features
    target = manifest.target
    target_label = _label(target.column, target.key)
    config = {
        "features": [_script_feature(f) for f in features],
        "example": example_row(features),
        "target": target.key,
        "target_label": target_label,
        "predict": "predict",
    }
    what = "a class" if manifest.task == "classification" else "a value"
    fields = "".join(_field(f) for f in features)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(manifest.name)} - modelapi</title>
<style>{_STYLE}</style>
</head>
<body>
<main>
<header>
<h1>{escape(manifest.name)}</h1>
<p>Predicts {escape(target.column)} ({what}) with model {escape(manifest.model_id)}.
Fill in the fields and press Predict.</p>
</header>
<form id="form" autocomplete="off">
{fields}
<div class="actions">
<button type="submit" id="submit">Predict</button>
<button type="button" class="secondary" id="example">Fill in an example</button>
</div>
</form>
<section id="result" aria-live="polite" hidden>
<p class="answer">{escape(target_label)}: <strong id="answer"></strong>
<span id="probability"></span></p>
<ul id="probabilities"></ul>
<p id="caution" hidden></p>
<small id="version"></small>
</section>
<section id="problem" role="alert" hidden>
<strong>The request was refused</strong>
<ul></ul>
</section>
<footer><a href="docs">API documentation</a> · <a href="openapi.json">OpenAPI</a>
· <a href="model">Model details</a> · <a href="model/report">Training report</a></footer>
</main>
<script type="application/json" id="config">{_json_for_script(config)}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
    return page.encode()


def home_page(service: Service, request: Request) -> Response:
    """A form to try the model in a browser."""
    predictor = service.predictor()
    body = _pages.get(model_key(predictor), lambda: render_page(predictor.manifest))
    return Response(200, body, "text/html; charset=utf-8", {"content-security-policy": _POLICY})
