package starlark

// Builtins that go through a big iterable in one call (rshell patch).
//
// The interpreter's loop runs the thread's OnMaxSteps hook every so many
// steps, and rshell hands the CPU on to other clients there. A builtin's
// own loop in Go ran none: `sorted(range(4 << 20))` went through its
// 4 million elements and ~80 million comparisons in one step, and a
// quiet client of the same server waited up to 2 s for its `1+1`. The
// loops of the builtins that go through a big value (third_party's
// RSHELL.md lists them) now count an element (a comparison, an insert, 4
// bytes written) as steps, and call bigWork every so many; their blocks
// of more than 16 KiB are allocated with makeValues' hooks.

import (
	"sort"
	"strings"
	"unicode"
)

// bigTable is the number of buckets (of ~0.4 KiB) from which a table
// grows with the thread's hooks (hashtable.grow).
const bigTable = 64

// bigLoop is how many elements a builtin's loop goes through between two
// calls of bigWork: about 10-40 µs of work.
const bigLoop = 1024

// loopWork is called by a builtin's loop after its i-th element (from 0):
// every bigLoop elements it counts them as steps and runs bigWork, which
// calls the step hook when the budget is reached and stops the loop when
// the thread was cancelled. thread may be nil.
func (thread *Thread) loopWork(i int) error { return thread.stepsWork(i, 1) }

// insertWork is loopWork for loops that insert into a dict or set (and a
// table's rehash), at 8 steps an element: an insert costs ~0.1-0.3 µs,
// and counted as one step, four sessions building dicts of a million
// pairs ran up to ~1 ms between ticks, and a quiet client's median went
// from 0.15 to 0.35 ms.
func (thread *Thread) insertWork(i int) error { return thread.stepsWork(i, 8) }

// stepsWork runs bigWork for bigLoop steps every bigLoop/steps elements.
func (thread *Thread) stepsWork(i, steps int) error {
	every := bigLoop / steps
	if i%every != every-1 {
		return nil
	}
	return thread.bigWork(4 * bigLoop)
}

// collectValues returns what iter yields, in a block allocated with
// makeValues when n, the iterable's length if known, is positive, with
// loopWork after each element. thread may be nil.
func (thread *Thread) collectValues(iter Iterator, n int) ([]Value, error) {
	var elems []Value
	if n > 0 {
		elems = thread.makeValues(n)[:0]
	}
	var x Value
	for i := 0; iter.Next(&x); i++ {
		var err error
		if elems, err = thread.appendValue(elems, x, i); err != nil {
			return nil, err
		}
	}
	return elems, nil
}

// appendValue is append(elems, x) in a builtin's loop building a list, x
// its i-th element: a big list grows with growValues, and loopWork runs
// after. On an error of growValues it returns elems. thread may be nil.
func (thread *Thread) appendValue(elems []Value, x Value, i int) ([]Value, error) {
	grown, err := thread.growValues(elems, 1)
	if err != nil {
		return elems, err
	}
	return append(grown, x), thread.loopWork(i)
}

// indexValue is the index of the first element of elems equal to x, or -1,
// with loopWork after each element.
func (thread *Thread) indexValue(elems []Value, x Value) (int, error) {
	for i, elem := range elems {
		if eq, err := Equal(elem, x); err != nil {
			return -1, err
		} else if eq {
			return i, nil
		}
		if err := thread.loopWork(i); err != nil {
			return -1, err
		}
	}
	return -1, nil
}

// sortStopped is the panic with which a sortSlice's Less stops the sort
// when bigWork says the thread was cancelled.
type sortStopped struct{}

// sortValues sorts s, counting a comparison as a step: on a thread that was
// cancelled it stops, with s.err set.
func sortValues(s *sortSlice, reverse bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(sortStopped); !ok {
				panic(r)
			}
		}
	}()
	if reverse {
		sort.Stable(sort.Reverse(s))
	} else {
		sort.Stable(s)
	}
}

// compared is called by a sortSlice's Less at each comparison.
func (s *sortSlice) compared() {
	if s.thread == nil {
		return
	}
	if err := s.thread.loopWork(s.compares); err != nil {
		s.err = err
		panic(sortStopped{})
	}
	s.compares++
}

// threadSetKey is SetKey run by thread: a big table grows with the
// thread's hooks (hashtable.grow). thread may be nil.
func (d *Dict) threadSetKey(thread *Thread, k, v Value) error { return d.ht.threadInsert(thread, k, v) }

// threadInsert is Insert run by thread: a big table grows with the
// thread's hooks. thread may be nil.
func (s *Set) threadInsert(thread *Thread, k Value) error { return s.ht.threadInsert(thread, k, None) }

// BigWork is bigWork for Go code outside this package, such as the json
// module (rshell patch): n bytes of work (a step per 4), the step hook
// run when the budget is reached, and an error when the thread was
// cancelled. thread may be nil.
func (thread *Thread) BigWork(n int) error { return thread.bigWork(n) }

// writeValue is writeValue(out, x, nil) run by thread, for str, repr and
// print: after each element of a list, tuple, dict or set at x's top
// level, bigWork for the bytes it wrote (a step per 4). `str()` of a
// 4M-element list was one step of the interpreter, ~0.5 s in which rshell
// could not hand the CPU on. thread may be nil.
func (thread *Thread) writeValue(out *strings.Builder, x Value) error {
	last := out.Len()
	return writeValueTicking(out, x, nil, func() error {
		n := out.Len() - last
		last = out.Len()
		return thread.bigWork(n)
	})
}

// stringList is a list of strs, allocated with makeValues and filled with
// loopWork (split with a maxsplit). thread may be nil.
func (thread *Thread) stringList(strs []string) (Value, error) {
	list := thread.makeValues(len(strs))
	for i, x := range strs {
		list[i] = String(x)
		if err := thread.loopWork(i); err != nil {
			return nil, err
		}
	}
	return NewList(list), nil
}

// splitFields is strings.Fields(s) as a list, built in turns: the
// elements appended with growValues and loopWork, bigWork every bigCopy
// bytes scanned. `("a " * (8 << 20)).split()` held the CPU turn 1.4 s.
// thread may be nil.
func (thread *Thread) splitFields(s string) (Value, error) {
	var list []Value
	start, scanned := -1, 0
	add := func(x string) (err error) {
		list, err = thread.appendValue(list, String(x), len(list))
		return err
	}
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 {
				if err := add(s[start:i]); err != nil {
					return nil, err
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		if i-scanned >= bigCopy {
			if err := thread.bigWork(i - scanned); err != nil {
				return nil, err
			}
			scanned = i
		}
	}
	if start >= 0 {
		if err := add(s[start:]); err != nil {
			return nil, err
		}
	}
	return NewList(list), nil
}

// splitSep is strings.Split(s, sep) as a list (strings.SplitAfter with
// after), its last element dropped with dropLast, built in turns as
// splitFields is. sep is not empty. thread may be nil.
func (thread *Thread) splitSep(s, sep string, after, dropLast bool) (Value, error) {
	var list []Value
	for i := 0; ; i++ {
		j := strings.Index(s, sep)
		if j < 0 {
			break
		}
		x := s[:j]
		if after {
			x = s[:j+len(sep)]
		}
		s = s[j+len(sep):]
		var err error
		if list, err = thread.appendValue(list, String(x), i); err != nil {
			return nil, err
		}
	}
	if !dropLast {
		list = append(list, String(s))
	}
	return NewList(list), nil
}
