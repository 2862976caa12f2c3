package progress

import (
	"strconv"
	"strings"
)

// screen is the little of a terminal that the tty view uses: text,
// carriage return, newline (a line feed and a carriage return, as a
// terminal's default output processing makes it), cursor up, erase to the
// end of the line and of the screen. Colours are ignored; lines do not wrap (a test
// checks widths itself); scrolled-off lines stay, as in scrollback.
type screen struct {
	lines    [][]rune
	row, col int
}

func emulate(b []byte) *screen {
	s := &screen{lines: [][]rune{nil}}
	rs := []rune(string(b))
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			s.col = 0
		case '\n':
			s.row, s.col = s.row+1, 0
			if s.row == len(s.lines) {
				s.lines = append(s.lines, nil)
			}
		case 0x1b:
			if i+1 >= len(rs) || rs[i+1] != '[' {
				continue
			}
			j := i + 2
			for j < len(rs) && (rs[j] < 0x40 || rs[j] > 0x7e) {
				j++
			}
			if j == len(rs) {
				return s // cut in the middle: the rest comes later
			}
			n, err := strconv.Atoi(string(rs[i+2 : j]))
			if err != nil {
				n = 1
			}
			switch rs[j] {
			case 'A':
				s.row = max(0, s.row-n)
			case 'K':
				if s.col < len(s.lines[s.row]) {
					s.lines[s.row] = s.lines[s.row][:s.col]
				}
			case 'J':
				if s.col < len(s.lines[s.row]) {
					s.lines[s.row] = s.lines[s.row][:s.col]
				}
				s.lines = s.lines[:s.row+1]
			}
			i = j
		default:
			l := s.lines[s.row]
			for len(l) <= s.col {
				l = append(l, ' ')
			}
			l[s.col] = r
			s.lines[s.row] = l
			s.col++
		}
	}
	return s
}

// text is the screen's lines, without trailing blanks.
func (s *screen) text() string {
	var b strings.Builder
	for _, l := range s.lines {
		b.WriteString(strings.TrimRight(string(l), " "))
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}
