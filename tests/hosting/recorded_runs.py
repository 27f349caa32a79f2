"""One group of a direct-mode source's rows through a real hosting node, with everything the node received
recorded at the wire (hosting/recording.py), and the source's true rows to score attacks against."""
from dataclasses import dataclass

import numpy as np
from market_terms import PRICE

from orchestrator.container.container import normalise_standard_columns
from orchestrator.container.fields import ColumnMapping, normalise_columns
from orchestrator.hosting.node import GroupReport
from orchestrator.hosting.recording import Recording, RecordingHolder, host_view
from orchestrator.privacy.attack import HostView
from orchestrator.source.direct import DirectSource

SOURCE = "clinic-a"  # 60 rows at the tests' scale


@dataclass(frozen=True)
class RecordedRun:
    recording: Recording
    view: HostView
    truth: np.ndarray  # the source's normalised rows, in row-id order
    labels: np.ndarray  # their true labels
    report: GroupReport


def recorded_run(world, make_node, signer_of, direct_terms, *, accepted_modes=("ldp", "projection", "dp"), checks=None,
                 **config) -> RecordedRun:
    source = next(s for phase in world.sources_by_phase for s in phase if s.name == SOURCE)
    options = {} if checks is None else {"checks": checks}
    holder = DirectSource(signer_of(5).address, PRICE, source.mapping, source.rows, name=SOURCE,
                          accepted_modes=accepted_modes, hash_key=source.hash_key, **options, **direct_terms)
    recording = Recording(world.standard_inputs)
    node = make_node({SOURCE: RecordingHolder(holder, recording)}, **config)
    [report] = node.run(max_groups=1)
    columns = {column: [row[column] for row in source.rows] for column in source.rows[0]}
    truth = normalise_columns(world.field_table, ColumnMapping(source.mapping), columns)
    view = host_view(recording, {SOURCE: lambda ids: ids - 1}, len(truth.features))  # direct row ids are 1, 2, ...
    return RecordedRun(recording, view, truth.features, truth.labels, report)


def owners_rows(world):
    rows = normalise_standard_columns(world.field_table, world.test_columns)
    return rows.features, rows.labels


def population(world):
    """Every row of the demo world but those of SOURCE, normalised: a re-identifying attacker's other candidates."""
    others = [owners_rows(world)[0]]
    for phase in world.sources_by_phase:
        for source in phase:
            if source.name == SOURCE or not set(world.field_table.field_names) <= set(source.mapping.values()):
                continue
            columns = {column: [row[column] for row in source.rows] for column in source.rows[0]}
            others.append(normalise_columns(world.field_table, ColumnMapping(source.mapping), columns).features)
    return np.concatenate(others)
