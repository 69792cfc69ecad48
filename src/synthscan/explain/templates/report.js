// synthscan report: sort the summary table, and switch the layers drawn over each image.
"use strict";

// Click a column header to sort by it; click again to reverse. Blank cells stay last.
for (const button of document.querySelectorAll("table.summary th button")) {
  button.addEventListener("click", () => {
    const header = button.closest("th");
    const table = header.closest("table");
    const column = header.cellIndex;
    const numeric = header.dataset.type === "number";
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const value = (row) => row.cells[column].dataset.value ?? row.cells[column].textContent.trim();
    const rows = [...table.tBodies[0].rows];
    rows.sort((a, b) => {
      const x = value(a), y = value(b);
      if (x === "" || y === "") return (x === "") - (y === "");
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    table.tBodies[0].append(...rows);
  });
}

// Checkboxes hide or show one layer of a card's picture; the slider sets the heatmap's opacity.
document.addEventListener("input", (event) => {
  const control = event.target;
  const figure = control.closest(".card")?.querySelector("figure.evidence");
  if (!figure) return;
  if (control.dataset.layer) figure.classList.toggle("hide-" + control.dataset.layer, !control.checked);
  if (control.dataset.opacity !== undefined) figure.style.setProperty("--heat-opacity", control.value / 100);
});
