from agents_kit.client.tasks import TaskManager
from agents_kit.protocol import TaskStatus


def test_status_only_moves_forward():
    tasks = TaskManager()
    tasks.upsert("t1", "A", desc="d", status=TaskStatus.COMPLETED, conclusion="42")
    tasks.upsert("t1", "A", status=TaskStatus.IN_PROGRESS)  # a late progress notice
    assert tasks.tasks["t1"].status is TaskStatus.COMPLETED and tasks.tasks["t1"].conclusion == "42"
    tasks.upsert("t1", "A", status=TaskStatus.FAILED, conclusion="boom")  # first terminal status wins
    assert tasks.tasks["t1"].status is TaskStatus.COMPLETED


def test_triggers_fire_only_when_every_trigger_is_terminal():
    tasks = TaskManager()
    for tid in ("t1", "t2", "t3"):
        tasks.upsert(tid, "A", status=TaskStatus.IN_PROGRESS)
    assert not tasks.set_triggers(["t1", "t2"], setter="P")
    tasks.upsert("t3", "A", status=TaskStatus.COMPLETED)
    assert not tasks.all_triggers_done()
    tasks.upsert("t1", "A", status=TaskStatus.COMPLETED)
    assert not tasks.all_triggers_done()
    tasks.upsert("t2", "A", status=TaskStatus.FAILED)  # failed counts as terminal
    assert tasks.all_triggers_done() and tasks.trigger_setter == "P"


def test_a_pause_on_already_finished_tasks_fires_immediately():
    tasks = TaskManager()
    tasks.upsert("t1", "A", status=TaskStatus.COMPLETED)
    assert tasks.set_triggers(["t1"], setter="P")


def test_round_trip_keeps_one_copy_per_task_and_the_trigger_state():
    # regression for the original's hang: after a persistence round trip triggers must still fire
    tasks = TaskManager()
    tasks.upsert("t1", "A", abstract="x", status=TaskStatus.IN_PROGRESS)
    tasks.upsert("t2", "B", abstract="y", status=TaskStatus.IN_PROGRESS)
    tasks.set_triggers(["t1", "t2"], setter="P")
    restored = TaskManager.from_dict(tasks.to_dict())
    restored.upsert("t1", "A", status=TaskStatus.COMPLETED)
    restored.upsert("t2", "B", status=TaskStatus.COMPLETED)
    assert restored.all_triggers_done()
    assert [t["index"] for t in restored.board()] == [0, 1]
    assert len(restored.tasks) == 2
