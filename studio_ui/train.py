"""The Train tab: a recipe and its main settings, a background training job, its progress, log and curves."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

import app_handlers as handlers
from app_handlers import JOBS, TASKS, UNTRAINED


# after each poll, in the browser: keep the log at its newest line, unless the reader scrolled up to read (scrolling
# back to the bottom follows again)
FOLLOW_LOG_JS = """
() => setTimeout(() => {
    const box = document.querySelector("#run-log textarea");
    if (!box) return;
    if (!box.dataset.follow) {
        box.dataset.follow = "yes";
        box.addEventListener("scroll", () => {
            box.dataset.follow = box.scrollTop + box.clientHeight >= box.scrollHeight - 4 ? "yes" : "no";
        });
    }
    if (box.dataset.follow === "yes") box.scrollTop = box.scrollHeight;
}, 50)
"""


@dataclass
class TrainTab:
    run_name: gr.Textbox
    gpus: gr.Number
    form: list                # recipe, then the widgets of app_handlers.build_train_config's arguments
    init_checkpoint: gr.Dropdown
    start_button: gr.Button
    run_picker: gr.Dropdown
    refresh_button: gr.Button
    run_status: gr.Markdown
    run_progress: gr.HTML
    cancel_button: gr.Button
    resume_button: gr.Button
    explore_button: gr.Button
    curves: gr.Image
    run_log: gr.Textbox


def build_train_tab(model_choices: list[tuple[str, str]]) -> TrainTab:
    """Lay out the tab (call inside ``gr.Tab``) and wire its own events."""
    recipes = handlers.recipe_files()
    default_recipe = "tiny.yaml" if "tiny.yaml" in recipes else None
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            run_name = gr.Textbox(label="Run name (empty: automatic)")
            recipe = gr.Dropdown(recipes, value=default_recipe, label="Recipe (training/configs)",
                                 elem_id="recipe-picker")
            (task_value, init_value, dataset_value, root_value, area_value, device_value, epochs_value,
             batch_value, lr_value, steps_value, fov_min_value, fov_max_value, tau_t_value, tau_s_value,
             ema_value) = handlers.recipe_values(default_recipe)
            task = gr.Radio(TASKS, value=task_value, label="What to train")
            init_checkpoint = gr.Dropdown([c for c in model_choices if c[1] != UNTRAINED], value=init_value,
                                          allow_custom_value=True, label="Start GeoDistill from")
            dataset = gr.Radio(["synthetic", "VIGOR root"], value=dataset_value,
                               label="Dataset (synthetic: generated when missing)")
            data_root = gr.Textbox(root_value, label="Data root (relative: under the data folder)")
            area = gr.Radio(["same", "cross"], value=area_value, label="Area")
            with gr.Row():
                device = gr.Dropdown(["auto", "cpu", "cuda"], value=device_value, label="Device",
                                     allow_custom_value=True)
                gpus = gr.Number(1, precision=0, minimum=1, maximum=16, label="GPUs (torchrun if > 1)")
            with gr.Row():
                epochs = gr.Number(epochs_value, precision=0, minimum=1, label="Epochs")
                batch_size = gr.Number(batch_value, precision=0, minimum=1, label="Batch size")
            with gr.Row():
                lr = gr.Number(lr_value, label="Learning rate")
                max_steps = gr.Number(steps_value, precision=0, minimum=0, label="Max steps/epoch (0: all)")
            with gr.Accordion("GeoDistill", open=False):
                fov_min = gr.Slider(30, 360, fov_min_value, step=5, label="Smallest student FoV (°)")
                fov_max = gr.Slider(30, 360, fov_max_value, step=5, label="Largest student FoV (°)")
                tau_teacher = gr.Number(tau_t_value, label="Teacher temperature")
                tau_student = gr.Number(tau_s_value, label="Student temperature")
                ema = gr.Slider(0.5, 0.9999, ema_value, label="EMA momentum")
            start_button = gr.Button("Start training", variant="primary", elem_id="start-button")
        with gr.Column(scale=2):
            with gr.Row():
                run_picker = gr.Dropdown([r.name for r in JOBS.list_runs()], value=None, label="Run",
                                         allow_custom_value=True, elem_id="run-picker")
                refresh_button = gr.Button("Refresh", scale=0)
            run_status = gr.Markdown(elem_id="run-status")
            run_progress = gr.HTML(elem_id="run-progress-box")
            with gr.Row():
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
                resume_button = gr.Button("Resume", elem_id="resume-button")
                explore_button = gr.Button("Load into Explore")
            curves = gr.Image(label="Loss and validation", elem_id="run-curves")
            run_log = gr.Textbox(label="Log", lines=12, max_lines=12, autoscroll=False, elem_id="run-log")
    tab = TrainTab(
        run_name=run_name, gpus=gpus,
        form=[recipe, task, init_checkpoint, dataset, data_root, area, device, epochs, batch_size, lr, max_steps,
              fov_min, fov_max, tau_teacher, tau_student, ema],
        init_checkpoint=init_checkpoint, start_button=start_button, run_picker=run_picker,
        refresh_button=refresh_button, run_status=run_status, run_progress=run_progress, cancel_button=cancel_button,
        resume_button=resume_button, explore_button=explore_button, curves=curves, run_log=run_log)
    _wire(tab)
    return tab


def _wire(tab: TrainTab) -> None:
    recipe = tab.form[0]
    recipe.input(handlers.recipe_values, recipe, tab.form[1:], api_name=False)
    start_event = tab.start_button.click(handlers.start_training, [tab.run_name, tab.gpus, *tab.form],
                                         [tab.run_picker, tab.run_status], api_name="start_training")
    # the timer writes only states (no visible component is touched, so none flickers); a state that changed
    # redraws its one component
    shown = [gr.State(None) for _ in range(4)]  # status line, progress bar, log, curves key
    timer = gr.Timer(1.0)
    timer.tick(handlers.poll_run, [tab.run_picker, *shown], shown, api_name=False, show_progress="hidden")
    for state, component in zip(shown[:3], (tab.run_status, tab.run_progress, tab.run_log)):
        event = state.change(lambda value: value, state, component, api_name=False, show_progress="hidden")
    event.then(None, None, None, js=FOLLOW_LOG_JS, show_progress="hidden")
    shown[3].change(handlers.run_curves, shown[3], tab.curves, api_name=False, show_progress="hidden")
    tab.cancel_button.click(handlers.cancel_run, tab.run_picker, tab.run_status, cancels=[start_event],
                            api_name="cancel_run")
    tab.resume_button.click(handlers.resume_run, [tab.run_picker, tab.gpus], tab.run_status, api_name="resume_run")
