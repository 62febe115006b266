// The console's one script of its own (besides htmx): on a phone the navigation folds away
// behind the Menu button. Without scripts the navigation simply stays open (console.css).
document.documentElement.classList.add("js");
addEventListener("DOMContentLoaded", () => {
  const button = document.querySelector("button.menu");
  const nav = document.getElementById("nav");
  if (!button || !nav) return;
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
});
