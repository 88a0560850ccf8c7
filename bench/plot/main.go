// Command plot draws the benchmark figures as one PNG: a bar chart per figure, one bar per
// target. It reads the chart description bench/cmd/bench writes (JSON on standard input or
// -in) and is a module of its own so that the plotting library stays out of milvus-lb's.
//
//	go run . -in results.plot.json -out ../../docs/benchmarks.png
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"log"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart is the input: panels of bars, one bar per target, in Targets order.
type Chart struct {
	Title   string   `json:"title"`
	Targets []string `json:"targets"`
	Panels  []Panel  `json:"panels"`
}

// Panel is one figure. Values are in the order of Chart.Targets; NaN is "not measured".
type Panel struct {
	Title  string    `json:"title"`
	Unit   string    `json:"unit"`
	Values []float64 `json:"values"`
	// Goal, if not zero, is drawn as a dashed line (a limit such as 256 MiB).
	Goal float64 `json:"goal,omitempty"`
}

// colours per target: the limit grey, milvus-lb blue, the peers in muted tones.
var colours = []color.Color{
	color.RGBA{150, 150, 150, 255},
	color.RGBA{31, 119, 180, 255},
	color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255},
	color.RGBA{148, 103, 189, 255},
	color.RGBA{140, 86, 75, 255},
}

func main() {
	in := flag.String("in", "-", "chart JSON (- for standard input)")
	out := flag.String("out", "benchmarks.png", "PNG to write")
	flag.Parse()
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		r = f
	}
	var c Chart
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		log.Fatalf("read chart: %v", err)
	}
	if err := draw2(c, *out); err != nil {
		log.Fatal(err)
	}
}

func panelPlot(c Chart, p Panel) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Y.Label.Text = p.Unit
	pl.Y.Min = 0
	w := vg.Points(22)
	for i := range c.Targets {
		v := math.NaN()
		if i < len(p.Values) {
			v = p.Values[i]
		}
		if math.IsNaN(v) {
			v = 0
		}
		bars, err := plotter.NewBarChart(plotter.Values{v}, w)
		if err != nil {
			return nil, err
		}
		bars.Color = colours[i%len(colours)]
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(float64(i)-float64(len(c.Targets)-1)/2)
		pl.Add(bars)
	}
	pl.NominalX("")
	pl.X.Tick.Marker = plot.ConstantTicks(nil)
	if p.Goal > 0 {
		goal := plotter.NewFunction(func(float64) float64 { return p.Goal })
		goal.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		goal.Color = color.Black
		pl.Add(goal)
		pl.Y.Max = math.Max(pl.Y.Max, p.Goal*1.1)
	}
	pl.X.Min, pl.X.Max = -0.5, 0.5
	return pl, nil
}

func draw2(c Chart, out string) error {
	const cols = 3
	rows := (len(c.Panels) + cols - 1) / cols
	// The title and the legend (a line per target) across the top.
	head := vg.Points(24 + 13*float64(len(c.Targets)))
	width, height := vg.Points(330*cols), vg.Points(240*float64(rows))+head
	img := vgimg.New(width, height)
	dc := draw.New(img)

	legendArea := draw.Crop(dc, 0, 0, height-head, 0)
	title := plot.New()
	title.Title.Text = c.Title
	title.HideAxes()
	title.Legend.Top = true
	title.Legend.Left = false
	for i, name := range c.Targets {
		bars, err := plotter.NewBarChart(plotter.Values{0}, vg.Points(1))
		if err != nil {
			return err
		}
		bars.Color = colours[i%len(colours)]
		title.Legend.Add(name, bars)
	}
	title.Legend.XOffs = -vg.Points(20)
	title.Draw(legendArea)

	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(12), PadY: vg.Points(12),
		PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	body := draw.Crop(dc, 0, 0, 0, -head)
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, p := range c.Panels {
		pl, err := panelPlot(c, p)
		if err != nil {
			return err
		}
		plots[i/cols][i%cols] = pl
	}
	canvases := plot.Align(plots, tiles, body)
	for r := range plots {
		for col := range plots[r] {
			if plots[r][col] != nil {
				plots[r][col].Draw(canvases[r][col])
			}
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	return f.Close()
}
