"""Preparing AVA-format data: cutting movies (:mod:`~ava_detect.prep.videos`), extracting PySlowFast
frame folders and lists (:mod:`~ava_detect.prep.frames`), checking annotations and labelling detected
boxes (:mod:`~ava_detect.prep.annotations`). The synthetic set is :mod:`ava_detect.synthetic`.
``ava-detect prep <step>`` and ``python -m data_prep.<step>`` run these."""
