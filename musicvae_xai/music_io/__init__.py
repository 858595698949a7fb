"""Music files <-> measures, with no model and no TensorFlow: ``reading`` (any registered format ->
melody -> measures -> bar choice -> transposition into a vocabulary's range -> ``FileMeasures``) and
``writing`` (measures -> a MIDI file keeping an input's tempo, time signature, program and track name).
"""

from musicvae_xai.music_io.reading import (  # noqa: F401
    BARS_RENAMED,
    PER_MEASURE,
    SKIP_TEXT,
    FileMeasures,
    MusicFileError,
    check_read_options,
    choose_bars,
    fit_shift,
    measures_of,
    no_measure_message,
    ranges,
    read_file,
    read_source,
)
from musicvae_xai.music_io.writing import (  # noqa: F401
    DEFAULT_TRACK_NAME,
    TICKS_PER_QUARTER,
    format_value,
    write_measures,
    write_midi,
)
