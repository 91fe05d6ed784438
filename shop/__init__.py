"""``shop``: the order system from a terminal, through its REST APIs only: submit orders (one per demo scenario,
setting and clearing the faults it needs), watch a saga step by step, list, cancel, and see, set and clear faults.
"""
