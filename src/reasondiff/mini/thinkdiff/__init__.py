"""ThinkDiff-mini: the ThinkDiff demonstration on SynthWorld, offline (issue #19).

    stills.py   SynthWorld stills with four attributes (agent, object, room, state) and their captions
    tasks.py    SynthWorld-CoBSAT: a CoBSAT-format task table over those attributes, on held-out scenes
    bench.py    `reasondiff thinkdiff bench`: each method's images judged, accuracy with bootstrap intervals
    vlm.py      the mini VLM (a toy-size transformers Qwen2-VL): captioning, attribute questions, episodes
    t5.py       the T5 decoder around the mini's frozen UMT5 encoder, trained on world captions
    alignment.py  caption data for the aligner, and what the T5 decoder reads back from aligned tokens
    decoder.py / decoder_training.py   the text-to-image mini decoder (a one-frame Wan DiT in T2V configuration)
    reasoner.py / loading.py   the bench's VLM + aligner; the parts from folders (the shipped ones by default, in
                weights/thinkdiff) and `offline_model`, what `reasondiff thinkdiff generate --model mini` runs
"""
