// Package errlist undoes errors.Join: validators report every problem
// joined, and the code that names them in a file's words (config keys,
// provision.toml keys, board profile lines) walks them one by one.
package errlist

// Flatten is the errors err joins, nested joins opened too; nil for nil,
// and err alone when it joins nothing.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var all []error
		for _, e := range j.Unwrap() {
			all = append(all, Flatten(e)...)
		}
		return all
	}
	return []error{err}
}
