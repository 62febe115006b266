// The upload's progress bar (htmx sends the form; this shows how much of it went).
document.addEventListener("htmx:xhr:progress", function (evt) {
  var bar = document.getElementById("upload-progress");
  if (!bar || !evt.detail.lengthComputable) return;
  bar.hidden = false;
  bar.value = Math.round((evt.detail.loaded / evt.detail.total) * 100);
});
document.addEventListener("htmx:afterRequest", function (evt) {
  if (evt.detail.elt.id !== "upload") return;  // not the task followed every 2 s
  var bar = document.getElementById("upload-progress");
  if (bar) { bar.hidden = true; bar.value = 0; }
  var form = document.getElementById("upload");
  if (form) form.reset();
});
// The task followed in place has finished: the page again, so the instances, versions and
// history show what it did (the address is the GET one, ?task=NO: nothing is sent again).
document.addEventListener("htmx:afterSwap", function (evt) {
  var path = (evt.detail.pathInfo && evt.detail.pathInfo.requestPath) || "";
  if (path.indexOf("/tasks/") !== 0) return;
  if (document.querySelector(".task .task-status[data-finished='yes']")) window.location.reload();
});
