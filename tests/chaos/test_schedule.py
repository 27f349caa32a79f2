"""The fault schedule is a function of its seed: a failing run is replayed from the seed alone."""
from chaos.schedule import KINDS, schedule


def test_the_same_seed_gives_the_same_schedule():
    assert schedule(17, 30.0, 12) == schedule(17, 30.0, 12)


def test_different_seeds_give_different_schedules():
    assert len({schedule(seed, 30.0, 8) for seed in range(20)}) == 20


def test_faults_are_in_time_order_inside_the_window():
    faults = schedule(3, 30.0, 50)
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    assert all(0.0 <= f.at <= 30.0 for f in faults)


def test_every_kind_of_fault_is_drawn():
    assert {f.kind for seed in range(10) for f in schedule(seed, 30.0, 10)} == set(KINDS)


def test_the_suites_seeds_draw_every_kind_of_fault_between_them():
    from test_chaos import DEFAULT_SEEDS

    from chaos.story import StoryConfig

    config = StoryConfig()
    assert {f.kind for seed in DEFAULT_SEEDS for f in schedule(seed, config.window, config.faults)} == set(KINDS)
