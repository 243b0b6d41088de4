// A training run's page follows the run: it polls the run's status and reloads when a new epoch
// or the end arrives (so the plots and figures are drawn by the server, never here).
(function () {
  const panel = document.getElementById("run-progress");
  if (!panel || !panel.dataset.unfinished) return;
  const phase = document.getElementById("run-phase");
  const bar = document.getElementById("run-bar");
  let epochs = null;
  async function poll() {
    try {
      const response = await fetch(panel.dataset.statusUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const run = await response.json();
        phase.textContent = run.phase;
        bar.value = run.progress;
        if (run.finished || (epochs !== null && run.epochs !== epochs)) { window.location.reload(); return; }
        epochs = run.epochs;
      }
    } catch (error) { /* the server restarting: try again */ }
    window.setTimeout(poll, 3000);
  }
  window.setTimeout(poll, 3000);
})();
