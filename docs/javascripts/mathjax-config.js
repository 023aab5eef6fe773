// MathJax 3 for pymdownx.arithmatex (generic mode): \( … \) inline, \[ … \] displayed,
// only inside the elements arithmatex marks. Loaded before javascripts/mathjax/tex-svg.js.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
    enableMenu: false,
  },
  svg: { fontCache: "global" },
};
