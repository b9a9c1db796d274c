package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// toolUse is a program the code looks up or runs by a literal name.
type toolUse struct {
	Name  string
	Where string // file:line of the first use
}

// lookupFuncs take every string literal among their arguments as a tool:
// exec.LookPath and the tests' own "skip unless installed" helpers.
var lookupFuncs = regexp.MustCompile(`^(LookPath|(need|require)Tools?|needStrace)$`)

// findTools lists the programs named by literal (or by a constant of the
// same package) in exec.Command, exec.CommandContext, exec.LookPath and the
// tests' needTool-like helpers, in every .go file under root.
func findTools(root string) ([]toolUse, error) {
	fset := token.NewFileSet()
	seen := map[string]toolUse{}
	dirs := map[string][]*ast.File{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".cache", "bin", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0) // objects: see callKey
		if err != nil {
			return err
		}
		dirs[filepath.Dir(path)] = append(dirs[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, files := range dirs {
		consts := stringConsts(files)
		value := func(e ast.Expr) (string, bool) {
			switch e := e.(type) {
			case *ast.BasicLit:
				if e.Kind == token.STRING {
					s, err := strconv.Unquote(e.Value)
					return s, err == nil
				}
			case *ast.Ident:
				s, ok := consts[e.Name]
				return s, ok
			}
			return "", false
		}
		// toolArgs are the arguments of call that name a program: the
		// program of exec.Command and exec.CommandContext, every argument
		// of the lookup helpers, and the arguments of this package's own
		// wrappers that pass a parameter on to one of those.
		wrappers := map[string]map[int]bool{}
		toolArgs := func(call *ast.CallExpr) []ast.Expr {
			switch name := funcName(call.Fun); {
			case name == "Command" && isExec(call.Fun) && len(call.Args) > 0:
				return call.Args[:1]
			case name == "CommandContext" && isExec(call.Fun) && len(call.Args) > 1:
				return call.Args[1:2]
			case lookupFuncs.MatchString(name):
				return call.Args
			case wrappers[callKey(call.Fun)] != nil:
				var out []ast.Expr
				for i, a := range call.Args {
					if wrappers[callKey(call.Fun)][i] {
						out = append(out, a)
					}
				}
				return out
			}
			return nil
		}
		// Two rounds: a wrapper of a wrapper.
		for range 2 {
			for _, f := range files {
				for _, d := range f.Decls {
					fd, ok := d.(*ast.FuncDecl)
					if !ok || fd.Body == nil {
						continue
					}
					params := paramIndex(fd.Type)
					ast.Inspect(fd.Body, func(n ast.Node) bool {
						call, ok := n.(*ast.CallExpr)
						if !ok {
							return true
						}
						for _, a := range toolArgs(call) {
							if id, ok := a.(*ast.Ident); ok {
								if i, ok := params[id.Name]; ok {
									k := declKey(fd)
									if wrappers[k] == nil {
										wrappers[k] = map[int]bool{}
									}
									wrappers[k][i] = true
								}
							}
						}
						return true
					})
				}
			}
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				for _, a := range toolArgs(call) {
					s, ok := value(a)
					if !ok || s == "" || strings.ContainsAny(s, " \t") {
						continue
					}
					if _, dup := seen[s]; !dup {
						p := fset.Position(a.Pos())
						rel, _ := filepath.Rel(root, p.Filename)
						seen[s] = toolUse{Name: s, Where: fmt.Sprintf("%s:%d", rel, p.Line)}
					}
				}
				return true
			})
		}
	}
	out := make([]toolUse, 0, len(seen))
	for _, k := range sortedKeys(seen) {
		out = append(out, seen[k])
	}
	return out, nil
}

// declKey and callKey name a wrapper: a function by its name, a method
// by "." and its name (a call through a selector), so a method run and a
// function run of one package stay apart.
func declKey(fd *ast.FuncDecl) string {
	if fd.Recv != nil {
		return "." + fd.Name.Name
	}
	return fd.Name.Name
}

func callKey(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		// A local variable (run := a.run) is not the package's function.
		if e.Obj != nil && e.Obj.Kind != ast.Fun {
			return ""
		}
		return e.Name
	case *ast.SelectorExpr:
		return "." + e.Sel.Name
	}
	return ""
}

// paramIndex maps a function's parameter names to their positions.
func paramIndex(ft *ast.FuncType) map[string]int {
	m := map[string]int{}
	i := 0
	for _, f := range ft.Params.List {
		if len(f.Names) == 0 {
			i++
			continue
		}
		for _, n := range f.Names {
			m[n.Name] = i
			i++
		}
	}
	return m
}

func funcName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

// isExec: exec.Command, not a method of the same name on another type.
func isExec(e ast.Expr) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	id, ok := s.X.(*ast.Ident)
	return ok && id.Name == "exec"
}

func stringConsts(files []*ast.File) map[string]string {
	m := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							if s, err := strconv.Unquote(lit.Value); err == nil {
								m[n.Name] = s
							}
						}
					}
				}
			}
		}
	}
	return m
}

// packageList is deploy/test-packages: the Debian packages make test
// installs, the few programs that come from elsewhere ("tool:NAME"), and
// the armhf board's root ("armhf:NAME", installed there, not on the host).
type packageList struct {
	Packages map[string]string // package → why
	Tools    map[string]string // a program not from a Debian package → why
	Armhf    map[string]string // a package of the armhf board's root → why
}

func readPackageList(r io.Reader) (packageList, error) {
	l := packageList{Packages: map[string]string{}, Tools: map[string]string{}, Armhf: map[string]string{}}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, why, _ := strings.Cut(line, " ")
		why = strings.TrimSpace(why)
		if why == "" {
			return l, fmt.Errorf("line %d: %s: say why the tests need it", n, name)
		}
		if t, ok := strings.CutPrefix(name, "tool:"); ok {
			l.Tools[t] = why
		} else if p, ok := strings.CutPrefix(name, "armhf:"); ok {
			l.Armhf[p] = why
		} else {
			l.Packages[name] = why
		}
	}
	return l, sc.Err()
}

// system answers where a program is and which package owns a file; the
// tests give a fake one.
type system struct {
	LookPath func(string) (string, error)
	// Owners lists the packages that own path, as dpkg -S does.
	Owners    func(path string) ([]string, error)
	Essential func(pkg string) bool
}

var hostSystem = system{
	LookPath: func(name string) (string, error) {
		if strings.Contains(name, "/") {
			_, err := os.Stat(name)
			return name, err
		}
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin"} {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s: not found in PATH nor the sbin folders", name)
	},
	Owners: func(path string) ([]string, error) {
		out, err := exec.Command("dpkg-query", "-S", path).Output()
		if err != nil {
			return nil, err
		}
		var pkgs []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			names, file, ok := strings.Cut(l, ": ")
			if !ok || strings.TrimSpace(file) != path {
				continue // a diversion or a folder
			}
			for _, p := range strings.Split(names, ", ") {
				p, _, _ = strings.Cut(p, ":") // the architecture
				pkgs = append(pkgs, p)
			}
		}
		return pkgs, nil
	},
	Essential: func(pkg string) bool {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Essential}", pkg).Output()
		return err == nil && strings.TrimSpace(string(out)) == "yes"
	},
}

// candidates are the names a program's file may have in dpkg's database:
// the path found, the file it links to, and both with and without /usr
// (Debian 12 merged /bin into /usr/bin; packages still ship either).
func candidates(path string) []string {
	set := map[string]bool{path: true}
	if r, err := filepath.EvalSymlinks(path); err == nil {
		set[r] = true
	}
	for p := range set {
		if s, ok := strings.CutPrefix(p, "/usr"); ok {
			set[s] = true
		} else {
			set["/usr"+p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// checkTools returns one line per program that is missing or comes from a
// package make test does not install (and that is not Essential).
func checkTools(sys system, uses []toolUse, list packageList) []string {
	var problems []string
	for _, u := range uses {
		if _, ok := list.Tools[u.Name]; ok {
			continue
		}
		path, err := sys.LookPath(u.Name)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s (%s): not installed; add the Debian package that has it to deploy/test-packages", u.Name, u.Where))
			continue
		}
		var owners []string
		for _, c := range candidates(path) {
			if o, err := sys.Owners(c); err == nil && len(o) > 0 {
				owners = o
				break
			}
		}
		if len(owners) == 0 {
			problems = append(problems, fmt.Sprintf("%s (%s): %s is in no Debian package: installed by hand? (a program from elsewhere is listed as tool:%s with the reason)", u.Name, u.Where, path, u.Name))
			continue
		}
		ok := false
		for _, o := range owners {
			if _, listed := list.Packages[o]; listed || sys.Essential(o) {
				ok = true
				break
			}
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("%s (%s): %s comes from %s, which deploy/test-packages does not list (a fresh machine would not have it)", u.Name, u.Where, path, strings.Join(owners, ", ")))
		}
	}
	return problems
}
