/* disco_lcd.c - the STM32F746G-DISCO's 4.3" 480x272 LCD (RK043FN48H) as two RGB565
 * framebuffers in its SDRAM, for the standalone screen (firmware/app/pc_draw.c).
 *
 *   SDRAM   MT48LC4M32B2 on FMC bank 1 (SDNE0/SDCKE0), 16-bit bus, 0xC0000000, HCLK/2
 *   LTDC    one RGB565 layer, 480x272, pixel clock 9.6 MHz from PLLSAI (VCO input 1 MHz:
 *           HSE 25 MHz / PLLM 25, as Mbed's DISCO_F746NG clock set-up has it)
 *   buffers 0xC0000000 and 0xC003FC00 (261,120 bytes each): one shown, one drawn into;
 *           board_screen_show() swaps them at the next vertical blanking
 *   pins    the board's LCD and SDRAM wiring (ST's BSP for this board): LTDC on GPIOE/G/I/J/K
 *           (AF14; PG12 AF9), LCD_DISP PI12, backlight PK3; FMC on GPIOC/D/E/F/G/H (AF12)
 *
 * Built and type-checked against the STM32F7 HAL that Mbed CE compiles (its hal_conf enables
 * LTDC and SDRAM); not run on a board yet (docs/boards.md). 0xC0000000 is Device memory in the
 * Cortex-M7's default map (not cached, so the LTDC sees every write; aligned accesses only,
 * which is all pc_draw.c does). Nothing allocates.
 */
#include "stm32f7xx_hal.h"

#include "board.h"
#include "pc_draw.h"

#define LCD_W 480
#define LCD_H 272
#define LCD_BUF0 0xC0000000u
#define LCD_BUF_BYTES ((uint32_t)LCD_W * LCD_H * 2u)
#define SDRAM_REFRESH_COUNT 0x0603u /* 64 ms / 4096 rows at 108 MHz, less 20 */
#define SDRAM_TIMEOUT 0xFFFFu

static LTDC_HandleTypeDef ltdc;
static SDRAM_HandleTypeDef sdram;
static pc_fb_t fb[2];
static int back; /* the buffer being drawn into */
static int lcd_ok;

static void delay_us(uint32_t us)
{
    const uint32_t t0 = board_time_us();
    while (board_time_us() - t0 < us) {
    }
}

static void pins(GPIO_TypeDef *port, uint32_t mask, uint32_t af)
{
    GPIO_InitTypeDef g = {0};
    g.Pin = mask;
    g.Mode = GPIO_MODE_AF_PP;
    g.Pull = GPIO_NOPULL;
    g.Speed = GPIO_SPEED_FREQ_VERY_HIGH;
    g.Alternate = af;
    HAL_GPIO_Init(port, &g);
}

static int sdram_command(uint32_t mode, uint32_t refresh, uint32_t reg)
{
    FMC_SDRAM_CommandTypeDef c = {0};
    c.CommandMode = mode;
    c.CommandTarget = FMC_SDRAM_CMD_TARGET_BANK1;
    c.AutoRefreshNumber = refresh;
    c.ModeRegisterDefinition = reg;
    return HAL_SDRAM_SendCommand(&sdram, &c, SDRAM_TIMEOUT) == HAL_OK ? 0 : -1;
}

static int sdram_init(void)
{
    __HAL_RCC_FMC_CLK_ENABLE();
    __HAL_RCC_GPIOC_CLK_ENABLE();
    __HAL_RCC_GPIOD_CLK_ENABLE();
    __HAL_RCC_GPIOE_CLK_ENABLE();
    __HAL_RCC_GPIOF_CLK_ENABLE();
    __HAL_RCC_GPIOG_CLK_ENABLE();
    __HAL_RCC_GPIOH_CLK_ENABLE();
    pins(GPIOC, GPIO_PIN_3, GPIO_AF12_FMC);
    pins(GPIOD, GPIO_PIN_0 | GPIO_PIN_1 | GPIO_PIN_8 | GPIO_PIN_9 | GPIO_PIN_10 | GPIO_PIN_14 |
                    GPIO_PIN_15,
         GPIO_AF12_FMC);
    pins(GPIOE, GPIO_PIN_0 | GPIO_PIN_1 | GPIO_PIN_7 | GPIO_PIN_8 | GPIO_PIN_9 | GPIO_PIN_10 |
                    GPIO_PIN_11 | GPIO_PIN_12 | GPIO_PIN_13 | GPIO_PIN_14 | GPIO_PIN_15,
         GPIO_AF12_FMC);
    pins(GPIOF, GPIO_PIN_0 | GPIO_PIN_1 | GPIO_PIN_2 | GPIO_PIN_3 | GPIO_PIN_4 | GPIO_PIN_5 |
                    GPIO_PIN_11 | GPIO_PIN_12 | GPIO_PIN_13 | GPIO_PIN_14 | GPIO_PIN_15,
         GPIO_AF12_FMC);
    pins(GPIOG, GPIO_PIN_0 | GPIO_PIN_1 | GPIO_PIN_4 | GPIO_PIN_5 | GPIO_PIN_8 | GPIO_PIN_15,
         GPIO_AF12_FMC);
    pins(GPIOH, GPIO_PIN_3 | GPIO_PIN_5, GPIO_AF12_FMC);

    FMC_SDRAM_TimingTypeDef t = {0};
    t.LoadToActiveDelay = 2;
    t.ExitSelfRefreshDelay = 7;
    t.SelfRefreshTime = 4;
    t.RowCycleDelay = 7;
    t.WriteRecoveryTime = 2;
    t.RPDelay = 2;
    t.RCDDelay = 2;
    sdram.Instance = FMC_SDRAM_DEVICE;
    sdram.Init.SDBank = FMC_SDRAM_BANK1;
    sdram.Init.ColumnBitsNumber = FMC_SDRAM_COLUMN_BITS_NUM_8;
    sdram.Init.RowBitsNumber = FMC_SDRAM_ROW_BITS_NUM_12;
    sdram.Init.MemoryDataWidth = FMC_SDRAM_MEM_BUS_WIDTH_16;
    sdram.Init.InternalBankNumber = FMC_SDRAM_INTERN_BANKS_NUM_4;
    sdram.Init.CASLatency = FMC_SDRAM_CAS_LATENCY_2;
    sdram.Init.WriteProtection = FMC_SDRAM_WRITE_PROTECTION_DISABLE;
    sdram.Init.SDClockPeriod = FMC_SDRAM_CLOCK_PERIOD_2;
    sdram.Init.ReadBurst = FMC_SDRAM_RBURST_ENABLE;
    sdram.Init.ReadPipeDelay = FMC_SDRAM_RPIPE_DELAY_0;
    if (HAL_SDRAM_Init(&sdram, &t) != HAL_OK) {
        return -1;
    }
    /* the JEDEC start-up: clock on, 100 us, precharge all, 8 auto-refresh, mode register
     * (burst length 1, sequential, CAS 2, standard, single write bursts) */
    if (sdram_command(FMC_SDRAM_CMD_CLK_ENABLE, 1, 0) != 0) {
        return -1;
    }
    delay_us(100);
    if (sdram_command(FMC_SDRAM_CMD_PALL, 1, 0) != 0 ||
        sdram_command(FMC_SDRAM_CMD_AUTOREFRESH_MODE, 8, 0) != 0 ||
        sdram_command(FMC_SDRAM_CMD_LOAD_MODE, 1, 0x0220u) != 0) {
        return -1;
    }
    return HAL_SDRAM_ProgramRefreshRate(&sdram, SDRAM_REFRESH_COUNT) == HAL_OK ? 0 : -1;
}

static int ltdc_init(void)
{
    RCC_PeriphCLKInitTypeDef clk = {0};
    clk.PeriphClockSelection = RCC_PERIPHCLK_LTDC;
    clk.PLLSAI.PLLSAIN = 192;
    clk.PLLSAI.PLLSAIR = 5;
    clk.PLLSAIDivR = RCC_PLLSAIDIVR_4; /* 192 MHz / 5 / 4 = 9.6 MHz */
    if (HAL_RCCEx_PeriphCLKConfig(&clk) != HAL_OK) {
        return -1;
    }
    __HAL_RCC_LTDC_CLK_ENABLE();
    __HAL_RCC_GPIOI_CLK_ENABLE();
    __HAL_RCC_GPIOJ_CLK_ENABLE();
    __HAL_RCC_GPIOK_CLK_ENABLE();
    pins(GPIOE, GPIO_PIN_4, GPIO_AF14_LTDC);
    pins(GPIOG, GPIO_PIN_12, GPIO_AF9_LTDC);
    pins(GPIOI, GPIO_PIN_9 | GPIO_PIN_10 | GPIO_PIN_14 | GPIO_PIN_15, GPIO_AF14_LTDC);
    pins(GPIOJ, GPIO_PIN_All & ~GPIO_PIN_12, GPIO_AF14_LTDC);
    pins(GPIOK, GPIO_PIN_0 | GPIO_PIN_1 | GPIO_PIN_2 | GPIO_PIN_4 | GPIO_PIN_5 | GPIO_PIN_6 |
                    GPIO_PIN_7,
         GPIO_AF14_LTDC);
    GPIO_InitTypeDef g = {0};
    g.Mode = GPIO_MODE_OUTPUT_PP;
    g.Pull = GPIO_NOPULL;
    g.Speed = GPIO_SPEED_FREQ_LOW;
    g.Pin = GPIO_PIN_12; /* LCD_DISP */
    HAL_GPIO_Init(GPIOI, &g);
    g.Pin = GPIO_PIN_3; /* backlight */
    HAL_GPIO_Init(GPIOK, &g);

    /* RK043FN48H: HSYNC 41, HBP 13, HFP 32, VSYNC 10, VBP 2, VFP 2 (the LTDC counts from 0) */
    ltdc.Instance = LTDC;
    ltdc.Init.HSPolarity = LTDC_HSPOLARITY_AL;
    ltdc.Init.VSPolarity = LTDC_VSPOLARITY_AL;
    ltdc.Init.DEPolarity = LTDC_DEPOLARITY_AL;
    ltdc.Init.PCPolarity = LTDC_PCPOLARITY_IPC;
    ltdc.Init.HorizontalSync = 41 - 1;
    ltdc.Init.VerticalSync = 10 - 1;
    ltdc.Init.AccumulatedHBP = 41 + 13 - 1;
    ltdc.Init.AccumulatedVBP = 10 + 2 - 1;
    ltdc.Init.AccumulatedActiveW = 41 + 13 + LCD_W - 1;
    ltdc.Init.AccumulatedActiveH = 10 + 2 + LCD_H - 1;
    ltdc.Init.TotalWidth = 41 + 13 + LCD_W + 32 - 1;
    ltdc.Init.TotalHeigh = 10 + 2 + LCD_H + 2 - 1;
    ltdc.Init.Backcolor.Red = 0;
    ltdc.Init.Backcolor.Green = 0;
    ltdc.Init.Backcolor.Blue = 0;
    if (HAL_LTDC_Init(&ltdc) != HAL_OK) {
        return -1;
    }
    LTDC_LayerCfgTypeDef layer = {0};
    layer.WindowX0 = 0;
    layer.WindowX1 = LCD_W;
    layer.WindowY0 = 0;
    layer.WindowY1 = LCD_H;
    layer.PixelFormat = LTDC_PIXEL_FORMAT_RGB565;
    layer.Alpha = 255;
    layer.Alpha0 = 0;
    layer.BlendingFactor1 = LTDC_BLENDING_FACTOR1_PAxCA;
    layer.BlendingFactor2 = LTDC_BLENDING_FACTOR2_PAxCA;
    layer.FBStartAdress = LCD_BUF0;
    layer.ImageWidth = LCD_W;
    layer.ImageHeight = LCD_H;
    if (HAL_LTDC_ConfigLayer(&ltdc, &layer, 0) != HAL_OK) {
        return -1;
    }
    HAL_GPIO_WritePin(GPIOI, GPIO_PIN_12, GPIO_PIN_SET);
    HAL_GPIO_WritePin(GPIOK, GPIO_PIN_3, GPIO_PIN_SET);
    return 0;
}

int board_screen_init(void)
{
    for (int i = 0; i < 2; i++) {
        fb[i].px = (uint16_t *)(uintptr_t)(LCD_BUF0 + (uint32_t)i * LCD_BUF_BYTES);
        fb[i].width = LCD_W;
        fb[i].height = LCD_H;
    }
    lcd_ok = sdram_init() == 0 && ltdc_init() == 0;
    if (lcd_ok) {
        pc_fill(&fb[0], 0, 0, LCD_W - 1, LCD_H - 1, PC_RGB565(0, 0, 0));
        back = 1;
    }
    return lcd_ok ? 0 : -1;
}

const pc_fb_t *board_screen_back(void)
{
    return lcd_ok ? &fb[back] : 0;
}

void board_screen_show(void)
{
    if (!lcd_ok) {
        return;
    }
    const uint32_t addr = LCD_BUF0 + (uint32_t)back * LCD_BUF_BYTES;
    HAL_LTDC_SetAddress_NoReload(&ltdc, addr, 0);
    HAL_LTDC_Reload(&ltdc, LTDC_RELOAD_VERTICAL_BLANKING);
    /* the shadow registers load at the next blanking (< 30 ms at ~60 Hz); drawing into the
     * buffer still on screen before then would tear */
    const uint32_t t0 = board_time_us();
    while ((LTDC->SRCR & LTDC_SRCR_VBR) != 0u && board_time_us() - t0 < 50000u) {
    }
    back ^= 1;
}
