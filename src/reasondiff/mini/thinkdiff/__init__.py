"""ThinkDiff-mini: the ThinkDiff demonstration on SynthWorld, offline (issue #19).

    stills.py   SynthWorld stills with four attributes (agent, object, room, state) and their captions
    tasks.py    SynthWorld-CoBSAT: a CoBSAT-format task table over those attributes, on held-out scenes
    bench.py    `reasondiff thinkdiff bench`: each method's images judged, accuracy with bootstrap intervals
    vlm.py      saving/loading the mini VLM (a toy-size transformers Qwen2-VL); its training is not written yet
    t5.py       the T5 decoder around the mini's frozen UMT5 encoder, trained on world captions
    reasoner.py / loading.py   the bench's VLM + aligner, and the parts from folders (or tiny)
    decoder.py  the text-to-image mini decoder (a one-frame Wan DiT in T2V configuration); its trainer is not
                written yet
"""
