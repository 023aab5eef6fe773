"""A griffe extension: lamina's docstrings, read by mkdocstrings as Markdown.

lamina's docstrings are written for ``help()``: Google-style sections (``Args:``,
``Shape:``, ``Returns:``), reST-style ``double backticks`` and roles, and formulas in plain
Unicode, one per line in an indented block. This extension changes only how the site shows
them, never the source:

- an indented block after a blank line or after a line ending in ``:`` (a formula block:
  reST would show it as a block quote) becomes display math, its Unicode turned into TeX
  (``∂L/∂W = Xᵀ·δ`` → ``\\partial L/\\partial W = X^{\\top}\\cdot\\delta``) for MathJax;
- an indented block after ``::`` (reST's literal block, used for code) becomes a fenced
  Python block;
- ``:meth:`x```, ``:class:`x``` and the other roles become code spans.

mkdocs.yml loads it (``extensions: [docs/_hooks/docstrings.py]``); tests/test_docs_site.py
checks every formula it makes renders in MathJax when Node.js is there.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import griffe

ROLE = re.compile(r":(?:meth|class|func|mod|attr|data|obj|exc|const|ref|doc|term):`~?([^`]+)`")
SECTION_TITLE = re.compile(r"^\s*[A-Za-z][\w -]*:\s*$")  # "Args:", "Shape:", "Notes:", ...

SUBSCRIPTS = dict(
    zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₔₕₖₗₘₙₚₛₜᵢⱼᵣᵤᵥ", "0123456789+-=()aeoxəhklmnpstijruv", strict=True)
)
SUPERSCRIPTS = dict(
    zip(
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᵀ",
        "0123456789+-=()abcdefghijklmnoprstuvwxyzT",
        strict=True,
    )
)
SYMBOLS = {
    "∂": r"\partial ",
    "∇": r"\nabla ",
    "Σ": r"\sum ",
    "∑": r"\sum ",
    "∏": r"\prod ",
    "·": r"\cdot ",
    "⊙": r"\odot ",
    "×": r"\times ",
    "−": "-",
    "–": "-",
    "±": r"\pm ",
    "≤": r"\le ",
    "≥": r"\ge ",
    "≠": r"\ne ",
    "≈": r"\approx ",
    "∈": r"\in ",
    "∞": r"\infty ",
    "→": r"\to ",
    "←": r"\leftarrow ",
    "⇒": r"\Rightarrow ",
    "‖": r"\| ",
    "⌊": r"\lfloor ",
    "⌋": r"\rfloor ",
    "⌈": r"\lceil ",
    "⌉": r"\rceil ",
    "…": r"\ldots ",
    "∘": r"\circ ",
    "ε": r"\varepsilon ",
    "α": r"\alpha ",
    "β": r"\beta ",
    "γ": r"\gamma ",
    "δ": r"\delta ",
    "η": r"\eta ",
    "θ": r"\theta ",
    "λ": r"\lambda ",
    "μ": r"\mu ",
    "ρ": r"\rho ",
    "σ": r"\sigma ",
    "τ": r"\tau ",
    "φ": r"\varphi ",
    "ω": r"\omega ",
    "π": r"\pi ",
    "κ": r"\kappa ",
    "ν": r"\nu ",
    "ξ": r"\xi ",
    "ψ": r"\psi ",
    "ζ": r"\zeta ",
    "χ": r"\chi ",
    "Δ": r"\Delta ",
    "Γ": r"\Gamma ",
    "Θ": r"\Theta ",
    "Λ": r"\Lambda ",
    "Φ": r"\Phi ",
    "Ω": r"\Omega ",
    "Π": r"\Pi ",
    "Ψ": r"\Psi ",
    "ℓ": r"\ell ",
    "{": r"\{",
    "}": r"\}",
    "%": r"\%",
    "#": r"\#",
    "&": r"\&",
    "$": r"\$",
    "~": r"\sim ",
    "\\": r"\backslash ",
    "½": r"\tfrac{1}{2}",
    "∗": "*",
    "<": "<",
    ">": ">",
    "|": "|",
}
ACCENTS = {"\u0302": r"\hat", "\u0304": r"\bar", "\u0303": r"\tilde", "\u0307": r"\dot"}
FUNCTIONS = {
    "exp",
    "log",
    "ln",
    "max",
    "min",
    "sign",
    "tanh",
    "sigmoid",
    "softmax",
    "softplus",
    "erf",
    "mean",
    "var",
    "sum",
    "sqrt",
    "clip",
    "argmax",
    "relu",
    "ReLU",
    "GELU",
    "abs",
    "sin",
    "cos",
    "diag",
    "concat",
    "floor",
    "ceil",
    "round",
    "Φ",
}
TEXT_CHARS = set(",;:.'\"§!?/%0123456789") | {" "}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _text(words: str) -> str:
    escaped = words.replace("\\", "").replace("{", "(").replace("}", ")")
    escaped = re.sub(r"([%#&$_])", r"\\\1", escaped)
    return r"\text{" + escaped + "}"


def _script(run: str, table: dict[str, str], mark: str) -> str:
    inner = "".join(table[ch] for ch in run)
    inner = r"\top" if inner == "T" and mark == "^" else inner
    return mark + "{" + inner + "}"


def to_tex(line: str) -> str:
    """One line of lamina's Unicode math as TeX for MathJax."""
    line = unicodedata.normalize("NFD", line.replace("``", "").replace("`", ""))
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == " ":
            j = i
            while j < n and line[j] == " ":
                j += 1
            out.append(r"\qquad " if j - i >= 2 and out else " ")
            i = j
            continue
        if re.match(r"[A-Za-z]_[A-Za-z0-9{]", line[i : i + 3]):  # x_t, h_{t-1}: a subscript
            out.append(ch)
            i += 1
            continue
        word = WORD.match(line, i)
        if word:
            token = word.group()
            if len(token) == 1 and not (
                line[word.end() : word.end() + 1] == " " and _prose_follows(line, word.end())
            ):
                out.append(token)
                i = word.end()
            elif token in FUNCTIONS and not line[word.end() : word.end() + 1].isalpha():
                out.append(r"\operatorname{" + token + "}")
                i = word.end()
            elif len(token) > 1 and "_" not in token and _is_identifier_math(token):
                out.append(r"\mathrm{" + token + "}")
                i = word.end()
            else:  # prose: take the words, spaces and punctuation that follow
                j = word.end()
                while j < n:
                    nxt = WORD.match(line, j)
                    if nxt and (
                        len(nxt.group()) > 1
                        or line[nxt.end() : nxt.end() + 1] in (" ", ",", ";", ".", ")", "")
                    ):
                        j = nxt.end()
                    elif line[j] in TEXT_CHARS and not line.startswith("  ", j):
                        j += 1
                    elif line[j] == "-" and line[j + 1 : j + 2].isalpha():
                        j += 1
                    else:
                        break
                while j > word.end() and line[j - 1] in " -−":
                    j -= 1
                lead = " " if i > 0 and line[i - 1] == " " else ""
                trail = " " if line[j : j + 1] == " " else ""
                out.append(_text(lead + line[i:j] + trail))
                i = j
            continue
        if ch in "_^" and i + 1 < n and out:
            if line[i + 1] == "{":
                depth, k = 0, i + 1
                while k < n:
                    depth += line[k] == "{"
                    depth -= line[k] == "}"
                    if depth == 0:
                        break
                    k += 1
                out.append(ch + "{" + to_tex(line[i + 2 : k]) + "}")
                i = k + 1
                continue
            script = re.match(r"[A-Za-z0-9]+", line[i + 1 :])
            if script:
                inner = script.group()
                out.append(
                    ch + "{" + (r"\mathrm{" + inner + "}" if len(inner) > 1 else inner) + "}"
                )
                i += 1 + len(inner)
                continue
        if ch in SUBSCRIPTS:
            j = i
            while j < n and line[j] in SUBSCRIPTS:
                j += 1
            out.append(_script(line[i:j], SUBSCRIPTS, "_"))
            i = j
            continue
        if ch in SUPERSCRIPTS:
            j = i
            while j < n and line[j] in SUPERSCRIPTS:
                j += 1
            out.append(_script(line[i:j], SUPERSCRIPTS, "^"))
            i = j
            continue
        if ch in ACCENTS and out:
            out[-1] = ACCENTS[ch] + "{" + out[-1].strip() + "}"
            i += 1
            continue
        if ch == "√":
            out.append(r"\surd ")
            i += 1
            continue
        if ch == "§":
            j = i + 1
            while j < n and (
                line[j].isdigit() or (line[j] == "." and j + 1 < n and line[j + 1].isdigit())
            ):
                j += 1
            out.append(_text(line[i:j]))
            i = j
            continue
        if ch in SYMBOLS:
            out.append(SYMBOLS[ch])
        elif ch in "_^":
            out.append("\\" + ch)
        elif ord(ch) < 128:
            out.append(ch)
        elif unicodedata.category(ch).startswith("M"):
            pass  # a combining mark without a letter before it
        else:
            out.append(_text(ch))
        i += 1
    return _sqrt("".join(out)).strip()


def _prose_follows(line: str, end: int) -> bool:
    """A one-letter word that starts a phrase ("a value", "a = …" is math)."""
    nxt = WORD.match(line, end + 1)
    return nxt is not None and len(nxt.group()) > 2 and nxt.group() not in FUNCTIONS


def _is_identifier_math(token: str) -> bool:
    """Short upright names in formulas: MAE, RMSE, SS, ReLU'd … (up to 4 capitals)."""
    return token.isupper() and len(token) <= 4


def _sqrt(tex: str) -> str:
    r"""``\surd (…)`` → ``\sqrt{…}`` and ``\surd x_{t}`` → ``\sqrt{x_{t}}``."""
    while r"\surd " in tex:
        start = tex.index(r"\surd ")
        rest = tex[start + len(r"\surd ") :]
        if rest.startswith("("):
            depth = 0
            for k, ch in enumerate(rest):
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0:
                    tex = tex[:start] + r"\sqrt{" + rest[1:k] + "}" + rest[k + 1 :]
                    break
            else:
                tex = tex[:start] + r"\sqrt{\,}" + rest
        else:
            atom = re.match(
                r"(\\[a-zA-Z]+\{[^{}]*\}|\\[a-zA-Z]+ ?|[A-Za-z0-9.]+)((?:[_^]\{[^{}]*\})*)", rest
            )
            if atom:
                tex = tex[:start] + r"\sqrt{" + atom.group().strip() + "}" + rest[atom.end() :]
            else:
                tex = tex[:start] + r"\sqrt{\,}" + rest
    return tex


def is_formula(lines: list[str]) -> bool:
    """Mostly math: fewer than three prose words a line (tables of text stay text)."""
    words = [w for line in lines for w in re.findall(r"[a-z]{3,}", line) if w not in FUNCTIONS]
    return len(words) < 3 * len(lines)


def fence(lines: list[str], indent: str) -> list[str]:
    try:
        compile("\n".join(lines), "<docstring>", "exec")
        language = "python"
    except SyntaxError:
        language = "text"
    return ["", indent + "```" + language, *(indent + b for b in lines), indent + "```", ""]


def math_block(lines: list[str], indent: str) -> list[str]:
    body = " \\\\\n".join(indent + to_tex(line) for line in lines)
    FORMULAS.append(body)
    return [
        "",
        indent + r"\[",
        indent + r"\begin{array}{l}",
        body,
        indent + r"\end{array}",
        indent + r"\]",
        "",
    ]


PARAM_SECTION = re.compile(
    r"^(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters"
    r"|Attributes):\s*$"
)
KEPT_SECTION = re.compile(
    r"^(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters"
    r"|Attributes|Returns|Yields|Raises|Warns|Shape|Notes?|Examples?|Warnings?|References):\s*$"
)
NAME = r"\*{0,2}\w+(\s*\([^()]*\))?"
ITEM = re.compile(rf"^{NAME}(,\s*{NAME})*(:(\s|$)|,\s*$)")  # "x: …", "x, y: …", "x, y,"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _split_head(text: str) -> tuple[str, str] | None:
    """``"a, b (note): description"`` → (``"a, b (note)"``, ``"description"``)."""
    depth = 0
    for k, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == ":" and depth == 0 and (k + 1 == len(text) or text[k + 1] in " \n"):
            return text[:k], text[k + 1 :].lstrip(" ")
    return None


def _names(head: str) -> list[tuple[str, str]] | None:
    """``"a, b (note)"`` → [(a, ""), (b, "note")], or None when it is not a list of names."""
    parts, depth, current = [], 0, ""
    for ch in head.replace("\n", " "):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    names = []
    for part in parts:
        match = re.fullmatch(r"\s*(\*{0,2}\w+)\s*(?:\((.*)\))?\s*", part, re.S)
        if not match:
            return None
        names.append((match.group(1), " ".join((match.group(2) or "").split())))
    return names


def expand_args(lines: list[str]) -> list[str]:
    """One item per name in ``Args``: lamina writes ``weight_l1, weight_l2: …`` as PyTorch
    does; griffe wants ``name: description``. A line in ``Args`` that names no argument
    ("The other arguments are …") moves below the section."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        title = PARAM_SECTION.match(lines[i])
        out.append(lines[i])
        i += 1
        if not title:
            continue
        base = len(title.group(1))
        body: list[str] = []
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
            body.append(lines[i])
            i += 1
        trailing: list[str] = []
        while body and not body[-1].strip():
            trailing.insert(0, body.pop())
        if not body:
            out.extend(trailing)
            continue
        item_indent = min(_indent(b) for b in body if b.strip())
        items: list[list[str]] = []
        for b in body:
            text = b[item_indent:]
            open_head = items and _split_head("\n".join(items[-1])) is None
            continues = open_head and (
                items[-1][-1].rstrip().endswith(",")
                or "\n".join(items[-1]).count("(") > "\n".join(items[-1]).count(")")
                or not ITEM.match(text)
            )
            sentence = bool(items) and items[-1][-1].rstrip().endswith(".") and text[:1].isupper()
            if b.strip() and _indent(b) == item_indent and not continues:
                if ITEM.match(text) or not items or open_head or sentence:
                    items.append([text])
                else:  # a description's next line, written at the names' indent
                    items[-1].append(text)
            elif items:
                items[-1].append(text)
        stray: list[str] = []
        for item in items:
            split = _split_head("\n".join(item))
            names = _names(split[0]) if split else None
            if not split or not names:
                stray.extend(item)
                continue
            description = split[1].split("\n")
            long = len(split[1]) > 100
            for k, (name, note) in enumerate(names):
                lines_of = description if k == 0 or not long else [f"see `{names[0][0]}`."]
                first = (f"({note}) " if note else "") + lines_of[0].strip()
                out.append(" " * item_indent + f"{name}: {first}".rstrip())
                out.extend(" " * (item_indent + 4) + d.strip() for d in lines_of[1:])
        out.extend(trailing)
        if stray:
            out.extend(["", *(" " * base + s.strip() for s in stray), ""])
    return out


def convert(text: str) -> str:
    """A docstring in lamina's style as the Markdown mkdocstrings renders."""
    text = ROLE.sub(r"`\1`", text)
    lines = expand_args(text.split("\n"))
    result: list[str] = []
    section_indent: int | None = None  # inside Args, Returns, …: leave the lines alone
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        kept = KEPT_SECTION.match(line)
        if kept:
            section_indent = len(kept.group(1))
            if result and result[-1].strip():
                result.append("")  # griffe reads a section only after a blank line
            result.append(line)
            i += 1
            continue
        if section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None
        if section_indent is not None:
            result.append(line)
            i += 1
            continue
        after_blank = i > 0 and not lines[i - 1].strip()
        previous = next((p for p in reversed(lines[:i]) if p.strip()), None)
        if line.strip() and previous is not None:
            parent = len(previous) - len(previous.lstrip())
            block_start = indent > parent and (
                previous.rstrip().endswith("::")
                or after_blank
                or (previous.rstrip().endswith(":") and not SECTION_TITLE.match(previous))
            )
            if block_start and not line.lstrip().startswith(">>>"):
                j = i
                while (
                    j < len(lines)
                    and lines[j].strip()
                    and len(lines[j]) - len(lines[j].lstrip()) >= indent
                ):
                    j += 1
                if previous.rstrip().endswith("::") and not after_blank:
                    j = i  # "text::" directly followed by an indented line: leave it
                if j > i:
                    block = [b[indent:] for b in lines[i:j]]
                    pad = " " * parent
                    if previous.rstrip().endswith("::") or not is_formula(block):
                        result.extend(fence(block, pad))
                    else:
                        result.extend(math_block(block, pad))
                    i = j
                    continue
        result.append(line)
        i += 1
    out = "\n".join(result)
    return re.sub(r"::\n", ":\n", out)


FORMULAS: list[str] = []  # every math block made, for tests/test_docs_site.py


class LaminaDocstrings(griffe.Extension):
    """Rewrites each docstring's value before griffe parses its sections."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        """Leave out methods and attributes without a docstring: overrides such as each
        layer's ``forward`` and ``backward``, which the class's docstring (its formulas)
        and the base class's contract describe, and ``self.epsilon = epsilon``, which its
        ``Args`` describe. Properties and class attributes (a dataclass's fields) stay."""
        dataclass = any("dataclass" in str(d.value) for d in cls.decorators)
        for name, member in list(cls.members.items()):
            if member.is_alias or name.startswith("__") or (dataclass and member.is_attribute):
                continue
            if member.docstring is not None or "property" in member.labels:
                continue
            if member.is_function or "instance-attribute" in member.labels:
                del cls.members[name]  # class-level ones stay: a dataclass's fields
